"""What keeps a row from being deleted: the rows that name it through a protected
foreign key, counted per kind, never listed (a purchase definition is named by every
purchase). Django's own delete page would read them all, then ask for the permission
to delete them, which nobody has: the ledger and the history are never deleted."""

from collections import defaultdict

from django.db import models
from django.db.models import Q


def named_by(obj):
    """One line per kind of row that keeps `obj`: "Ledger entries: 1,204 name Purchase
    points"."""
    protecting = defaultdict(Q)
    for relation in obj._meta.get_fields(include_hidden=True):
        if (
            isinstance(relation, models.ForeignObjectRel)
            and not relation.many_to_many
            and relation.on_delete is models.PROTECT
        ):
            protecting[relation.related_model] |= Q(**{relation.field.name: obj})
    for model, naming in protecting.items():
        if count := model.objects.filter(naming).count():
            yield f"{model._meta.verbose_name_plural.capitalize()}: {count:,} name {obj}"


class KeptWhileNamedAdmin:
    """A delete page (and the list's delete action) that says what keeps each row
    (`what_keeps`), and deletes only once nothing does."""

    def what_keeps(self, obj):
        return named_by(obj)

    def get_deleted_objects(self, objs, request):
        protected = [reason for obj in objs for reason in self.what_keeps(obj)]
        if protected:
            return [], {}, set(), protected
        return super().get_deleted_objects(objs, request)
