"""Codes a service's ValidationError carries when the refusal is not a rule: the API
answers them with their own status (api.errors.rule_refused), every other refusal 422."""

# The external_id was used with other content (P8): 409.
CONFLICT = "conflict"
# What a field names does not exist (a referrer's customer code): 404, naming the field.
UNKNOWN = "unknown"
