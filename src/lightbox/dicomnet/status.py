"""DIMSE status codes (PS3.7 Annex C, PS3.4 service-specific tables) and their categories.

Statuses are plain ``int`` constants: they go straight into the Status (0000,0900) element and compare
cheaply. Several service-specific meanings share one code (0xA900, 0xB000, 0xC000); the aliases below only
make the calling code read like the table it follows.
"""

from typing import Literal

Category = Literal["success", "warning", "failure", "cancel", "pending"]

# PS3.7 C.1.1, C.1.4, C.1.5
SUCCESS = 0x0000
CANCEL = 0xFE00
PENDING = 0xFF00
# PS3.4 C.4.1.1.4: matches are continuing, but one or more Optional Keys were not supported
PENDING_WARNING = 0xFF01

# PS3.7 C.4 and C.5: general warning and failure statuses of the DIMSE-C and DIMSE-N services
ATTRIBUTE_NOT_SUPPORTED_WARNING = 0x0001  # PS3.4 F.7.2.1 N-GET: requested optional Attributes not supported
NO_SUCH_ATTRIBUTE = 0x0105
INVALID_ATTRIBUTE_VALUE = 0x0106
ATTRIBUTE_LIST_ERROR = 0x0107  # warning
PROCESSING_FAILURE = 0x0110
DUPLICATE_SOP_INSTANCE = 0x0111
NO_SUCH_OBJECT_INSTANCE = 0x0112
NO_SUCH_EVENT_TYPE = 0x0113
NO_SUCH_ARGUMENT = 0x0114
INVALID_ARGUMENT_VALUE = 0x0115
ATTRIBUTE_VALUE_OUT_OF_RANGE = 0x0116  # warning
INVALID_OBJECT_INSTANCE = 0x0117
NO_SUCH_SOP_CLASS = 0x0118
CLASS_INSTANCE_CONFLICT = 0x0119
MISSING_ATTRIBUTE = 0x0120
MISSING_ATTRIBUTE_VALUE = 0x0121
SOP_CLASS_NOT_SUPPORTED = 0x0122
NO_SUCH_ACTION_TYPE = 0x0123
NOT_AUTHORIZED = 0x0124
DUPLICATE_INVOCATION = 0x0210
UNRECOGNIZED_OPERATION = 0x0211
MISTYPED_ARGUMENT = 0x0212
RESOURCE_LIMITATION = 0x0213

# PS3.4 B.2.3: C-STORE
OUT_OF_RESOURCES = 0xA700  # Refused (A7xx); also C-FIND Refused (PS3.4 C.4.1.1.4)
DATA_SET_DOES_NOT_MATCH_SOP_CLASS = 0xA900  # Error (A9xx)
CANNOT_UNDERSTAND = 0xC000  # Error (Cxxx)
COERCION_OF_DATA_ELEMENTS = 0xB000  # Warning
ELEMENTS_DISCARDED = 0xB006  # Warning
DATA_SET_DOES_NOT_MATCH_SOP_CLASS_WARNING = 0xB007  # Warning

# PS3.4 C.4.1.1.4, C.4.2.1.5, C.4.3.1.4: C-FIND, C-MOVE, C-GET
OUT_OF_RESOURCES_MATCHES = 0xA701  # C-MOVE/C-GET Refused: unable to calculate number of matches
OUT_OF_RESOURCES_SUBOPERATIONS = 0xA702  # C-MOVE/C-GET Refused: unable to perform sub-operations
MOVE_DESTINATION_UNKNOWN = 0xA801  # C-MOVE Refused
IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS = 0xA900  # Failed
UNABLE_TO_PROCESS = 0xC000  # Failed (Cxxx)
SUBOPERATIONS_COMPLETE_WITH_FAILURES = 0xB000  # C-MOVE/C-GET Warning: one or more failures or warnings

_WARNINGS = frozenset({ATTRIBUTE_NOT_SUPPORTED_WARNING, ATTRIBUTE_LIST_ERROR, ATTRIBUTE_VALUE_OUT_OF_RANGE})
_PENDING = frozenset({PENDING, PENDING_WARNING})


def category(status: int) -> Category:
    """Classify a DIMSE status per PS3.7 C.1.

    Warnings are 0001, 0107, 0116 and Bxxx; pending is FF00/FF01; cancel is FE00. Everything else, including
    codes the standard does not define, is a failure: an unknown status must never be mistaken for success.
    """
    if status == SUCCESS:
        return "success"
    if status in _PENDING:
        return "pending"
    if status == CANCEL:
        return "cancel"
    if status in _WARNINGS or 0xB000 <= status <= 0xBFFF:
        return "warning"
    return "failure"
