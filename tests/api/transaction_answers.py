"""What the API answers for a transaction it recorded (a purchase, a return, an
action): the fields of its body."""

RESULT_FIELDS = {
    "external_id",
    "member",
    "kind",
    "amount",
    "occurred_at",
    "channel",
    "store",
    "original_external_id",
    "points",
    "summary",
}
