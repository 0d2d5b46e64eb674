"""Which attributes a QIDO-RS response holds at each level (PS3.18 10.6.3.3) when the client names none.

Each level has its default return attributes, split into Required ones (returned, empty when the entity
has no value) and Conditional ones ("shall be present if known": returned only when they have a value),
and the attributes ``includefield=all`` adds (PS3.18 8.3.4.3).
"""

from __future__ import annotations

from dataclasses import dataclass

from lightbox.domain.levels import Level
from lightbox.services.query import COMPUTED_KEYWORDS, LEVEL_KEYWORDS


@dataclass(frozen=True, slots=True)
class Defaults:
    """Attribute paths (keywords, dotted through sequences) returned without being asked for."""

    required: tuple[str, ...]
    conditional: tuple[str, ...]


# PS3.18 Table 10.6.3-3, Study Resource Search Response Payload.
STUDY_DEFAULTS = Defaults(
    required=(
        "StudyDate",
        "StudyTime",
        "AccessionNumber",
        "ReferringPhysicianName",
        "RetrieveURL",  # Conditional in the table, but every stored study is retrievable
        "PatientName",
        "PatientID",
        "PatientBirthDate",
        "PatientSex",
        "StudyInstanceUID",
        "StudyID",
        "NumberOfStudyRelatedSeries",
        "NumberOfStudyRelatedInstances",
    ),
    # ModalitiesInStudy is empty only for a study whose objects carry no Modality: left out then, since a
    # viewer's study list (OHIF 3.13) reads its values without checking there are any, and shows no study
    # at all when one study has none. Asked for by name, it comes, empty or not.
    conditional=("InstanceAvailability", "TimezoneOffsetFromUTC", "ModalitiesInStudy"),
)

# PS3.18 Table 10.6.3-4, Series Resources Search Response Payload. The Study Instance UID is not in the
# table; it is returned as well, since the series' RetrieveURL and any use of the series need it.
SERIES_DEFAULTS = Defaults(
    required=(
        "StudyInstanceUID",
        "Modality",
        "RetrieveURL",
        "SeriesInstanceUID",
        "SeriesNumber",
        "NumberOfSeriesRelatedInstances",
    ),
    conditional=(
        "TimezoneOffsetFromUTC",
        "SeriesDescription",
        "PerformedProcedureStepStartDate",
        "PerformedProcedureStepStartTime",
        "RequestAttributesSequence.ScheduledProcedureStepID",
        "RequestAttributesSequence.RequestedProcedureID",
    ),
)

# PS3.18 Table 10.6.3-5, Instance Resources Search Response Payload (+ the study and series UIDs, which
# the instance's RetrieveURL holds).
INSTANCE_DEFAULTS = Defaults(
    required=(
        "StudyInstanceUID",
        "SeriesInstanceUID",
        "SOPClassUID",
        "SOPInstanceUID",
        "RetrieveURL",
        "InstanceNumber",
    ),
    conditional=(
        "InstanceAvailability",
        "TimezoneOffsetFromUTC",
        "Rows",
        "Columns",
        "BitsAllocated",
        "NumberOfFrames",
    ),
)

DEFAULTS = {Level.STUDY: STUDY_DEFAULTS, Level.SERIES: SERIES_DEFAULTS, Level.IMAGE: INSTANCE_DEFAULTS}


def _computed(level: Level) -> tuple[str, ...]:
    return tuple(k for k, lv in COMPUTED_KEYWORDS.items() if lv is level)


# includefield=all: "all available attributes" of the level (PS3.18 10.6.3.3). The index keeps every
# patient, study and series attribute by name, so those lists are complete.
STUDY_ALL = (*LEVEL_KEYWORDS[Level.PATIENT], *LEVEL_KEYWORDS[Level.STUDY], *_computed(Level.STUDY))
SERIES_ALL = (*LEVEL_KEYWORDS[Level.SERIES], *_computed(Level.SERIES))
# Instance attributes are open-ended; these are those of the modules most instances have (PS3.3 C.7.6,
# C.8, C.12.1, C.17, C.24): SOP Common, General and Enhanced Image, Image Plane, Image Pixel, Multi-frame,
# Modality and VOI LUT, the common acquisition parameters, SR Document General, Encapsulated Document.
INSTANCE_ALL = (
    "SOPClassUID",
    "SOPInstanceUID",
    "InstanceCreationDate",
    "InstanceCreationTime",
    "InstanceCreatorUID",
    "RelatedGeneralSOPClassUID",
    "OriginalSpecializedSOPClassUID",
    "InstanceNumber",
    "PatientOrientation",
    "ContentDate",
    "ContentTime",
    "ImageType",
    "AcquisitionNumber",
    "AcquisitionDate",
    "AcquisitionTime",
    "AcquisitionDateTime",
    "DerivationDescription",
    "DerivationCodeSequence",
    "ImagesInAcquisition",
    "ImageComments",
    "QualityControlImage",
    "BurnedInAnnotation",
    "RecognizableVisualFeatures",
    "LossyImageCompression",
    "LossyImageCompressionRatio",
    "LossyImageCompressionMethod",
    "PresentationLUTShape",
    "IrradiationEventUID",
    "ImageLaterality",
    "ReferencedImageSequence",
    "SourceImageSequence",
    "ReferencedInstanceSequence",
    "PixelSpacing",
    "ImageOrientationPatient",
    "ImagePositionPatient",
    "SliceThickness",
    "SpacingBetweenSlices",
    "SliceLocation",
    "SamplesPerPixel",
    "PhotometricInterpretation",
    "Rows",
    "Columns",
    "BitsAllocated",
    "BitsStored",
    "HighBit",
    "PixelRepresentation",
    "PlanarConfiguration",
    "PixelAspectRatio",
    "NumberOfFrames",
    "FrameIncrementPointer",
    "FrameTime",
    "NumberOfTemporalPositions",
    "TemporalPositionIdentifier",
    "StackID",
    "InStackPositionNumber",
    "RescaleIntercept",
    "RescaleSlope",
    "RescaleType",
    "WindowCenter",
    "WindowWidth",
    "WindowCenterWidthExplanation",
    "VOILUTFunction",
    "KVP",
    "ExposureTime",
    "XRayTubeCurrent",
    "Exposure",
    "ConvolutionKernel",
    "ScanningSequence",
    "SequenceVariant",
    "EchoTime",
    "RepetitionTime",
    "MagneticFieldStrength",
    "ContentLabel",
    "ContentDescription",
    "ContentCreatorName",
    "PresentationCreationDate",
    "PresentationCreationTime",
    "ConceptNameCodeSequence",
    "CompletionFlag",
    "VerificationFlag",
    "PreliminaryFlag",
    "DocumentTitle",
    "MIMETypeOfEncapsulatedDocument",
)

ALL = {Level.STUDY: STUDY_ALL, Level.SERIES: SERIES_ALL, Level.IMAGE: INSTANCE_ALL}
