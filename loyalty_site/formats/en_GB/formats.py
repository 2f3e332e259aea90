# Times on the 24-hour clock everywhere, as the member pages write them ("4 Dec 2026,
# 22:05"): Django's British English would write "10:05 p.m." in the lists.
DATETIME_FORMAT = "j M Y, H:i"
TIME_FORMAT = "H:i"
SHORT_DATETIME_FORMAT = "d/m/Y H:i"
# Dates in forms as the files and the API write them (2026-12-20): "07/06/1993" reads as
# 7 June or 6 July depending on who reads it. Typed day first (20/12/2026) too.
DATE_INPUT_FORMATS = ["%Y-%m-%d", "%d/%m/%Y", "%d/%m/%y"]
DATETIME_INPUT_FORMATS = [
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%d",
    "%d/%m/%Y %H:%M:%S",
    "%d/%m/%Y %H:%M",
    "%d/%m/%Y",
    "%d/%m/%y %H:%M:%S",
    "%d/%m/%y %H:%M",
    "%d/%m/%y",
]
