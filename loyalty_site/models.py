from django.db import IntegrityError, models, transaction


class FormSubmission(models.Model):
    """A staff form already applied, by the one-time token it was rendered with.

    Written in the same transaction as the change the form makes, so a double submit,
    a refresh or a re-post from the browser history applies it once: the second insert
    of the token fails on the primary key."""

    token = models.UUIDField(primary_key=True)
    submitted_at = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return str(self.token)

    @classmethod
    def first(cls, token) -> bool:
        """Record the token in the caller's transaction; False if a form with it was
        already applied. A form sent twice at once: the second insert waits on the
        first's, then finds the token."""
        try:
            with transaction.atomic():
                cls.objects.create(token=token)
        except IntegrityError:
            return False
        return True
