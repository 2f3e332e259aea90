import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone

from core.private_files import PrivateFiles, stored_name


class JobRun(models.Model):
    """One run of a periodic job shared out to the workers in member-id chunks: the
    expiry of one cutoff, or the degradation at one instant (`key`).

    Unique by job and key, so starting the same run again finds it and its chunks."""

    job = models.CharField(max_length=40)
    key = models.CharField(max_length=40)
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Whether the programme analytics have taken the days its changes are dated on
    # (points.services.snapshots): set by the snapshot that saw it finished.
    in_analytics = models.BooleanField(default=False, db_default=False)

    class Meta:
        db_table = "loyalty_site_jobrun"  # created there before core existed
        constraints = [models.UniqueConstraint(fields=["job", "key"], name="job_run_unique_key")]

    def __str__(self):
        return f"{self.job} {self.key}"

    @property
    def seconds(self) -> float:
        return (self.finished_at - self.started_at).total_seconds()

    def total(self) -> int:
        """The rows its chunks changed."""
        return self.chunks.aggregate(total=models.Sum("result"))["total"] or 0


class JobChunk(models.Model):
    """The members with ids in [first_id, last_id] of a run. `done_at` and `result` (the
    rows the chunk changed) are set by the transaction that did the chunk's work."""

    run = models.ForeignKey(JobRun, on_delete=models.CASCADE, related_name="chunks")
    first_id = models.BigIntegerField()
    last_id = models.BigIntegerField()
    done_at = models.DateTimeField(null=True, blank=True)
    result = models.BigIntegerField(null=True, blank=True)

    class Meta:
        db_table = "loyalty_site_jobchunk"
        constraints = [
            models.UniqueConstraint(fields=["run", "first_id"], name="job_chunk_unique_range")
        ]

    def __str__(self):
        return f"{self.run} members {self.first_id}-{self.last_id}"


class FiguresGeneration(models.Model):
    """One row: a token that changes after every bulk write that moves members or
    points (core.figures.stale). Figures kept in the cache are keyed on it, so a job in
    a worker makes them stale for every web process, whatever the cache backend."""

    token = models.UUIDField(default=uuid.uuid4)

    def __str__(self):
        return str(self.token)


class WebhookEndpoint(models.Model):
    """Where one of the brand's systems wants to hear about events (Webhooks, contract).

    Kept here, beside the deliveries, because every domain app writes deliveries in its
    own transactions and reads which endpoints want an event (core.events); the
    sending, the signing and the admin are the API's (api.webhooks)."""

    url = models.URLField("URL", max_length=500)
    description = models.CharField(max_length=200, blank=True)
    events = models.JSONField(default=list, help_text="The event types it receives.")
    # Kept as given (not hashed): the signature of every delivery is made with it.
    secret = models.CharField(max_length=100, editable=False)
    # The secret before the last rotation, which also signs until then: the receiver
    # moves to the new one without refusing a delivery meanwhile.
    previous_secret = models.CharField(max_length=100, blank=True, editable=False)
    previous_secret_until = models.DateTimeField(null=True, blank=True, editable=False)
    is_active = models.BooleanField("active", default=True)
    # Why the sender switched it off (the receiver answered 410 Gone); empty otherwise,
    # and again once a superuser switches it on.
    switched_off_reason = models.CharField(
        "why it is off", max_length=200, blank=True, default="", db_default="", editable=False
    )
    # The receiver asked for a wait (429, 502, 503 or 504 with a Retry-After): nothing
    # is posted to it before then.
    paused_until = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    # One sender at a time per endpoint (so its events go out in order): the sender
    # holds the endpoint until then, and gives it back when done.
    sending_until = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        verbose_name = "webhook endpoint"
        ordering = ["pk"]

    def __str__(self):
        return self.description or self.url


class WebhookDelivery(models.Model):
    """One event for one endpoint (an outbox row): written in the same transaction as
    the change it reports, so none is lost and none is sent for a rolled-back change.

    The event is named by its type and its subject (the row it reports: a tier change,
    a ledger entry, a redemption...); its body is read from that row when sent, or from
    `data` when that row no longer says it. Unique per endpoint, type and subject, so a
    job run twice reports nothing twice."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        DELIVERED = "delivered", "Delivered"
        FAILED = "failed", "Failed"

    # Endpoints are never deleted; no database check per row of a bulk job's events.
    endpoint = models.ForeignKey(
        WebhookEndpoint,
        on_delete=models.PROTECT,
        related_name="deliveries",
        db_index=False,
        db_constraint=False,
    )
    type = models.CharField(max_length=40)
    member_id = models.BigIntegerField()  # events of one member are delivered in order
    subject_id = models.BigIntegerField()
    created_at = models.DateTimeField(default=timezone.now)  # when it happened: the order
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    # When it may be tried (again).
    next_attempt_at = models.DateTimeField(default=timezone.now)
    last_attempt_at = models.DateTimeField("last try", null=True, blank=True)
    last_status_code = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=200, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    # What the event tells that its subject no longer holds (member.erased: the customer
    # code before the erasure), kept only until it is delivered or given up.
    data = models.JSONField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "webhook deliveries"
        ordering = ["-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["endpoint", "type", "subject_id"], name="webhook_delivery_once"
            )
        ]
        indexes = [
            # The sender's queue: pending deliveries of an endpoint, oldest first, and
            # whether a member has an older one still pending (order per member).
            models.Index(
                fields=["endpoint", "member_id", "created_at"],
                name="webhook_pending_by_member",
                condition=models.Q(status="pending"),
            ),
            models.Index(
                fields=["endpoint", "next_attempt_at"],
                name="webhook_pending_due",
                condition=models.Q(status="pending"),
            ),
        ]

    def __str__(self):
        return f"{self.type} #{self.subject_id} to {self.endpoint_id}"


class BulkEvent(models.Model):
    """The events of one chunk of a bulk job (an expiry cutoff, a degradation run, a
    threshold change), reported in one row of the job's transaction: the rows of
    `model` that match `filters`, one event each. The sender writes their deliveries
    (core.events.expand_bulk_events) before it sends, so a job over a million members
    writes a few rows, not a million, while it holds its locks."""

    type = models.CharField(max_length=40)
    model = models.CharField(max_length=60)  # app_label.ModelName, with a `member` key
    filters = models.JSONField()
    endpoints = models.JSONField()  # the ids of those that wanted it then
    created_at = models.DateTimeField(default=timezone.now)
    expanded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(
                fields=["id"], name="bulk_event_unexpanded", condition=models.Q(expanded_at=None)
            )
        ]

    def __str__(self):
        return f"{self.type} of {self.model} {self.filters}"


class ImportBatch(models.Model):
    """One file uploaded in the CX Manager to import (transactions, point grants or
    members), checked and then imported by the workers. Its transactions and ledger
    entries name it; it keeps who, when, the counts, the errors and the duration."""

    class Kind(models.TextChoices):
        TRANSACTIONS = "transactions", "Transactions"
        GRANTS = "grants", "Point grants"
        MEMBERS = "members", "Members"

    class Status(models.TextChoices):
        CHECKING = "checking", "Checking"
        INVALID = "invalid", "Has errors"
        CHECKED = "checked", "Checked: waiting for confirmation"
        IMPORTING = "importing", "Importing"
        DONE = "done", "Imported"
        FAILED = "failed", "Failed"

    kind = models.CharField(max_length=12, choices=Kind.choices)
    # Stored under a random name in the private folder (core.private_files).
    file = models.FileField(storage=PrivateFiles(), upload_to=stored_name, max_length=300)
    file_name = models.CharField(max_length=255)  # as uploaded
    size = models.BigIntegerField(default=0)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    uploaded_at = models.DateTimeField(default=timezone.now)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.CHECKING)
    # What the check found, or the import did (counts as `import_*` reports them).
    rows = models.BigIntegerField(default=0)
    new = models.BigIntegerField(default=0)
    updated = models.BigIntegerField(default=0)
    skipped = models.BigIntegerField(default=0)
    error_count = models.BigIntegerField(default=0)  # rows with errors, not messages
    points = models.BigIntegerField(default=0)  # transactions: net, earned less taken back
    # Shown apart, never netted (docs/rules.md): what a transactions file's returns take
    # back, a members file's opening lifetime points. None: kept before they were.
    taken_back = models.BigIntegerField(null=True, blank=True)
    lifetime = models.BigIntegerField(null=True, blank=True)
    # What the file gives beside its rows: tier-up bonuses, referral points (the
    # referrers are not in "members"), welcome points. None: kept before it was.
    given = models.BigIntegerField(null=True, blank=True)
    # What expiry gave back to the file's returns dated before a cutoff that had taken
    # their points (points.services.late_returns): rare, shown when there is some.
    given_back = models.BigIntegerField(default=0)
    members = models.BigIntegerField(default=0)
    first_errors = models.JSONField(default=list, blank=True)  # [[line, column, reason]]
    errors_file = models.FileField(
        storage=PrivateFiles(), upload_to=stored_name, blank=True, max_length=300
    )
    failure = models.TextField(blank=True)  # why the step itself stopped
    # Of the step running (from when it was queued; once it ended, from when its worker
    # began it); its progress and heartbeat are in core.progress's cache, which other
    # processes read while the step's transaction is still open.
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    imported_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )

    class Meta:
        verbose_name = "import"
        ordering = ["-pk"]

    def __str__(self):
        return f"{self.get_kind_display()} {self.file_name}"

    @property
    def earned(self) -> int | None:
        """What a transactions file's purchases earn, or a grants file's rows grant
        (None if not kept apart)."""
        return None if self.taken_back is None else self.points + self.taken_back
