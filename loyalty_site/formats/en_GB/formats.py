# Times on the 24-hour clock everywhere, as the member pages write them ("4 Dec 2026,
# 22:05"): Django's British English would write "10:05 p.m." in the lists.
DATETIME_FORMAT = "j M Y, H:i"
TIME_FORMAT = "H:i"
SHORT_DATETIME_FORMAT = "d/m/Y H:i"
