"""A file's rows staged in a temporary table of the import's transaction, copied as
they are read: the database then finds duplicate ids and what was recorded before,
names the members to lock, and gives the rows back in order a chunk at a time. Shared
by the imports (transactions, point grants, members); each says its own columns."""

from django.db import connection
from django.db.models.expressions import RawSQL

from core.bulk import insert_rows


class StagedTable:
    """A temporary table `name` with `columns` ({name: SQL type}); the first is the
    row's line in the file, and `external_id` its id."""

    def __init__(self, name: str, columns: dict[str, str]):
        self.name, self.columns = name, columns

    def create(self, values, *, filled=None) -> None:
        """Create the table and copy `values` (tuples of the `filled` columns, by
        default all of them) into it as they come."""
        columns = ", ".join(f"{name} {type_}" for name, type_ in self.columns.items())
        with connection.cursor() as cursor:
            cursor.execute(f"CREATE TEMPORARY TABLE {self.name} ({columns})")
        insert_rows(self.name, filled or list(self.columns), values)

    def duplicates(self, *, also=()) -> list[tuple[int, int]]:
        """(line, first line) of every row whose external_id an earlier line has. `also`:
        (line, external_id) of the file's rows that were not staged (the bad ones),
        counted among the lines, in a table of their own for the time of the query."""
        lines, unstaged, also = self.name, f"{self.name}_unstaged", list(also)
        if also:
            with connection.cursor() as cursor:
                columns = "line integer, external_id text"
                cursor.execute(f"CREATE TEMPORARY TABLE {unstaged} ({columns})")
            insert_rows(unstaged, ["line", "external_id"], also)
            lines = (
                f"(SELECT line, external_id FROM {self.name}"
                f" UNION ALL SELECT line, external_id FROM {unstaged})"
            )
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT s.line, f.first_line FROM {lines} s JOIN"
                f" (SELECT external_id, MIN(line) AS first_line FROM {lines} a"
                f" GROUP BY external_id HAVING COUNT(*) > 1) f"
                f" ON f.external_id = s.external_id"
                f" WHERE s.line <> f.first_line ORDER BY s.line"
            )
            pairs = cursor.fetchall()
            if also:
                cursor.execute(f"DROP TABLE {unstaged}")
        return pairs

    def mark_recorded(self, table: str) -> None:
        """For the rows not marked yet, the id of the row of `table` their external_id
        was recorded under (a `recorded_id` column; a row once recorded stays recorded:
        an import marks them before its locks, and again after)."""
        name = self.name
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {name} SET recorded_id = t.id FROM {table} t"
                f" WHERE t.external_id = {name}.external_id AND {name}.recorded_id IS NULL"
            )

    def members(self, *, recorded: bool | None = None) -> RawSQL:
        """The customer codes of the rows (a `member` column), as a subquery: with
        `recorded` True, those whose rows were all recorded before (mark_recorded);
        False, the others: the members an import run again writes for."""
        if recorded is None:
            return RawSQL(f"SELECT member FROM {self.name}", ())
        all_recorded = "COUNT(recorded_id) = COUNT(*)"
        having = all_recorded if recorded else f"NOT ({all_recorded})"
        return RawSQL(f"SELECT member FROM {self.name} GROUP BY member HAVING {having}", ())

    def count(self) -> int:
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT COUNT(*) FROM {self.name}")
            return cursor.fetchone()[0]

    def drop(self) -> None:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE {self.name}")
