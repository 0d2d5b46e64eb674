// A share link's page: once shown, on to the images (the page's link stays as the way there without script).
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const open = document.getElementById("open-images");
  if (open) window.location.replace(open.href);
});
