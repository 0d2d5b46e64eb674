"""Name lists and the study catalogue for the index-scale population (all upper case, as modalities send)."""

from __future__ import annotations

FAMILY_NAMES = (
    "SMITH", "JOHNSON", "WILLIAMS", "BROWN", "JONES", "GARCIA", "MILLER", "DAVIS", "RODRIGUEZ", "MARTINEZ",
    "HERNANDEZ", "LOPEZ", "GONZALEZ", "WILSON", "ANDERSON", "THOMAS", "TAYLOR", "MOORE", "JACKSON", "MARTIN",
    "LEE", "PEREZ", "THOMPSON", "WHITE", "HARRIS", "SANCHEZ", "CLARK", "RAMIREZ", "LEWIS", "ROBINSON",
    "WALKER", "YOUNG", "ALLEN", "KING", "WRIGHT", "SCOTT", "TORRES", "NGUYEN", "HILL", "FLORES",
    "GREEN", "ADAMS", "NELSON", "BAKER", "HALL", "RIVERA", "CAMPBELL", "MITCHELL", "CARTER", "ROBERTS",
    "MULLER", "SCHMIDT", "SCHNEIDER", "FISCHER", "WEBER", "MEYER", "WAGNER", "BECKER", "SCHULZ", "HOFFMANN",
    "MARTINI", "ROSSI", "RUSSO", "FERRARI", "ESPOSITO", "BIANCHI", "ROMANO", "COLOMBO", "RICCI", "MARINO",
    "DUBOIS", "LAURENT", "SIMON", "MICHEL", "LEFEBVRE", "LEROY", "ROUX", "DAVID", "BERTRAND", "MOREL",
    "DE JONG", "JANSEN", "DE VRIES", "VAN DEN BERG", "VAN DIJK", "BAKKER", "VISSER", "SMIT", "MEIJER",
    "MULDER", "NOWAK", "KOWALSKI", "WISNIEWSKI", "WOJCIK", "KOWALCZYK", "KAMINSKI", "LEWANDOWSKI",
    "ZIELINSKI",
    "JOHANSSON", "ANDERSSON", "KARLSSON", "NILSSON", "ERIKSSON", "LARSSON", "OLSSON", "PERSSON", "SVENSSON",
    "IVANOV", "SMIRNOV", "KUZNETSOV", "POPOV", "VASILIEV", "PETROV", "SOKOLOV", "MIKHAILOV", "NOVAK",
    "KIM", "PARK", "CHOI", "JUNG", "KANG", "CHO", "YOON", "JANG", "LIM", "HAN",
    "WANG", "LI", "ZHANG", "LIU", "CHEN", "YANG", "HUANG", "ZHAO", "WU", "ZHOU",
    "SATO", "SUZUKI", "TAKAHASHI", "TANAKA", "WATANABE", "ITO", "YAMAMOTO", "NAKAMURA", "KOBAYASHI", "KATO",
    "SINGH", "KUMAR", "SHARMA", "PATEL", "GUPTA", "KHAN", "ALI", "AHMED", "HASSAN", "HUSSAIN",
    "OKAFOR", "OKONKWO", "ADEYEMI", "MENSAH", "MWANGI", "OTIENO", "BANDA", "PHIRI", "DLAMINI", "NKOSI",
    "O'BRIEN", "MURPHY", "KELLY", "SULLIVAN", "WALSH", "BYRNE", "RYAN", "O'CONNOR", "MCCARTHY", "DOYLE",
    "SILVA", "SANTOS", "OLIVEIRA", "SOUZA", "PEREIRA", "COSTA", "CARVALHO", "ALMEIDA", "FERREIRA", "GOMES",
    "MÜLLER", "GARCÍA", "FRANÇOIS", "JØRGENSEN", "NÚÑEZ", "BÖHM", "LEHTINEN", "KORHONEN", "VIRTANEN",
)  # fmt: skip

FEMALE_GIVEN = (
    "MARY", "PATRICIA", "JENNIFER", "LINDA", "ELIZABETH", "BARBARA", "SUSAN", "JESSICA", "SARAH", "KAREN",
    "NANCY", "LISA", "MARGARET", "SANDRA", "ASHLEY", "EMILY", "DONNA", "MICHELLE", "CAROL", "AMANDA",
    "ANNA", "MARIA", "SOFIA", "EMMA", "OLIVIA", "HANNAH", "LAURA", "JULIA", "CLARA", "EVA",
    "FATIMA", "AISHA", "PRIYA", "MEI", "YUKI", "HANA", "NGOZI", "AMARA", "INGRID", "ASTRID",
    "CHIARA", "GIULIA", "CAMILLE", "CHLOE", "LEA", "ZOFIA", "AGNIESZKA", "OLGA", "TATIANA", "LUCIA",
)  # fmt: skip

MALE_GIVEN = (
    "JAMES", "ROBERT", "JOHN", "MICHAEL", "DAVID", "WILLIAM", "RICHARD", "JOSEPH", "THOMAS", "CHARLES",
    "CHRISTOPHER", "DANIEL", "MATTHEW", "ANTHONY", "MARK", "DONALD", "STEVEN", "PAUL", "ANDREW", "JOSHUA",
    "PETER", "HANS", "KLAUS", "JAN", "PIETER", "LUCA", "MARCO", "PIERRE", "LOUIS", "JUAN",
    "CARLOS", "JOSE", "MIGUEL", "AHMED", "MOHAMMED", "RAJ", "ARJUN", "WEI", "HIROSHI", "KENJI",
    "CHINEDU", "KWAME", "LARS", "ERIK", "OLAF", "PIOTR", "TOMASZ", "IVAN", "DMITRI", "SERGEI",
)  # fmt: skip

REFERRING_PHYSICIANS = (
    "HOUSE^GREGORY^^DR", "GREY^MEREDITH^^DR", "ROSS^DOUGLAS^^DR", "CARTER^JOHN^^DR", "WEAVER^KERRY^^DR",
    "BAILEY^MIRANDA^^DR", "SHEPHERD^DEREK^^DR", "YANG^CRISTINA^^DR", "KOVAC^LUKA^^DR", "BENTON^PETER^^DR",
    "LEWIS^SUSAN^^DR", "GREENE^MARK^^DR", "CHEN^JING-MEI^^DR", "PRATT^GREGORY^^DR", "RASGOTRA^NEELA^^DR",
    "QUINN^MICHAELA^^DR", "BROWN^JAMES^^DR", "MORALES^ANA^^DR", "SCHULTE^KARIN^^DR", "DUPONT^ALAIN^^DR",
    "ROSSI^PAOLO^^DR", "NOWAK^EWA^^DR", "TANAKA^HARUTO^^DR", "OKAFOR^ADA^^DR", "SINGH^HARPREET^^DR",
    "", "", "",  # studies without a referring physician (emergency, self-referred)
)  # fmt: skip

# Study kinds by modality: the share of studies, then (description, body part, the two series' modality and
# description) for each kind.
STUDY_KINDS: dict[str, tuple[float, tuple[tuple[str, str, tuple[tuple[str, str], tuple[str, str]]], ...]]] = {
    "CT": (
        0.20,
        (
            ("CT HEAD W/O CONTRAST", "HEAD", (("CT", "AXIAL 5MM"), ("CT", "BONE AXIAL 2MM"))),
            ("CT CHEST W CONTRAST", "CHEST", (("CT", "AXIAL 1.25MM"), ("CT", "LUNG AXIAL 1.25MM"))),
            ("CT ABDOMEN PELVIS W CONTRAST", "ABDOMEN", (("CT", "PORTAL VENOUS"), ("CT", "CORONAL MPR"))),
            ("CT ANGIO CHEST PE", "CHEST", (("CT", "CTA 1MM"), ("CT", "MIP 10MM"))),
        ),
    ),
    "MR": (
        0.15,
        (
            ("MR BRAIN W/WO CONTRAST", "HEAD", (("MR", "T1 SAG"), ("MR", "T2 FLAIR AX"))),
            ("MR LUMBAR SPINE W/O CONTRAST", "LSPINE", (("MR", "T2 SAG"), ("MR", "T1 AX"))),
            ("MR KNEE RIGHT", "KNEE", (("MR", "PD FS COR"), ("MR", "PD SAG"))),
            ("MR PROSTATE MULTIPARAMETRIC", "PROSTATE", (("MR", "T2 TSE AX"), ("MR", "DWI B1400"))),
        ),
    ),
    "CR": (
        0.18,
        (
            ("XR CHEST 2 VIEWS", "CHEST", (("CR", "PA"), ("CR", "LAT"))),
            ("XR ABDOMEN SUPINE", "ABDOMEN", (("CR", "AP SUPINE"), ("CR", "AP ERECT"))),
        ),
    ),
    "DX": (
        0.15,
        (
            ("XR HAND LEFT 3 VIEWS", "HAND", (("DX", "PA"), ("DX", "OBLIQUE"))),
            ("XR KNEE RIGHT 2 VIEWS", "KNEE", (("DX", "AP"), ("DX", "LAT"))),
            ("XR CHEST PORTABLE", "CHEST", (("DX", "AP PORTABLE"), ("DX", "AP PORTABLE REPEAT"))),
        ),
    ),
    "US": (
        0.12,
        (
            ("US ABDOMEN COMPLETE", "ABDOMEN", (("US", "LIVER"), ("US", "KIDNEYS"))),
            ("US THYROID", "NECK", (("US", "RIGHT LOBE"), ("US", "LEFT LOBE"))),
            ("US OB 2ND TRIMESTER", "ABDOMEN", (("US", "BIOMETRY"), ("US", "ANATOMY SURVEY"))),
        ),
    ),
    "MG": (
        0.10,
        (
            ("MG SCREENING BILATERAL", "BREAST", (("MG", "R CC"), ("MG", "L CC"))),
            ("MG DIAGNOSTIC LEFT", "BREAST", (("MG", "L MLO"), ("MG", "L SPOT MAG"))),
        ),
    ),
    "PT": (0.05, (("PET/CT WHOLE BODY FDG", "WHOLEBODY", (("PT", "PET AC"), ("CT", "CT AC"))),)),
    "NM": (0.02, (("NM BONE SCAN WHOLE BODY", "WHOLEBODY", (("NM", "ANTERIOR"), ("NM", "POSTERIOR"))),)),
    "XA": (0.03, (("XA CORONARY ANGIOGRAPHY", "HEART", (("XA", "LCA RAO CAUD"), ("XA", "RCA LAO"))),)),
}
