import django.db.models.deletion
from django.db import migrations, models
from django.db.models import F, Q


def from_their_own_merge(apps, schema_editor):
    """Accounts merged before: the account their own merge moved them into. Not merged
    again since (their points reached `merged_into` at their own merge): that account.
    Merged again since: the account of the chain whose merge line into it was written
    at their merge's moment (the ledger tells it; the closed account's own lines
    aside); left empty when the merge moved no points, and the page then says when
    the account was merged, not into which."""
    # On the migration's own connection (the tables' owner, docs/deploy.md).
    alias = schema_editor.connection.alias
    Member = apps.get_model("members", "Member")
    LedgerEntry = apps.get_model("points", "LedgerEntry")
    members = Member.objects.using(alias)
    closed = members.filter(merged_into__isnull=False)
    closed.filter(merged_into_at=F("merged_at")).update(merge_survivor=F("merged_into"))
    merged_again = closed.exclude(merged_into_at=F("merged_at")).values_list(
        "pk", "merged_into", "merged_at"
    )
    for pk, holder, merged_at in merged_again:
        chain = members.filter(Q(pk=holder) | Q(merged_into=holder)).exclude(pk=pk)
        survivor = (
            LedgerEntry.objects.using(alias)
            .filter(kind="merge", issued_at=merged_at, member__in=chain.values("pk"))
            .values_list("member", flat=True)
            .first()
        )
        if survivor:
            members.filter(pk=pk).update(merge_survivor=survivor)


class Migration(migrations.Migration):
    dependencies = [
        ("members", "0021_list_indexes"),
        ("points", "0027_ledger_and_transaction_kind_indexes"),
    ]

    operations = [
        migrations.AddField(
            model_name="member",
            name="merge_survivor",
            field=models.ForeignKey(
                blank=True,
                db_index=False,
                editable=False,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="members.member",
            ),
        ),
        migrations.AddIndex(
            model_name="member",
            index=models.Index(
                condition=models.Q(("merge_survivor__isnull", False)),
                fields=["merge_survivor"],
                name="member_merge_survivor",
            ),
        ),
        migrations.RunPython(from_their_own_merge, migrations.RunPython.noop),
    ]
