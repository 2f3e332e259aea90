import uuid

from django.db import models
from django.utils import timezone


class JobRun(models.Model):
    """One run of a periodic job shared out to the workers in member-id chunks: the
    expiry of one cutoff, or the degradation at one instant (`key`).

    Unique by job and key, so starting the same run again finds it and its chunks."""

    job = models.CharField(max_length=40)
    key = models.CharField(max_length=40)
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

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
