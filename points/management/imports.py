"""The command-line door of the imports (transactions, point grants, members)."""

import sys

from django.core.management.base import BaseCommand, CommandError

from points.services.batches import again_if_refused

FAILED = "the import stopped on an error of its own: nothing was written"


class ImportCommand(BaseCommand):
    """FILE and --dry-run; every bad row to stderr, a summary of what was (or would be)
    written, then the last line of counts; exit status 1 on errors. A subclass says how
    its file is read (`read`), imported (`run`) and summed up (`described`)."""

    report_class = None  # the report of `run`, to name an error of the import itself

    def add_arguments(self, parser):
        parser.add_argument("file")
        parser.add_argument(
            "--dry-run", action="store_true", help="check and compute everything, write nothing"
        )

    def read(self, stream):
        raise NotImplementedError

    def run(self, rows, *, errors, dry_run):
        raise NotImplementedError

    def described(self, report, *, dry_run: bool) -> str:
        raise NotImplementedError

    def handle(self, *, file, dry_run, **options):
        read = []  # the parser's errors of the last reading

        def attempt():
            try:
                stream = open(file, "rb")  # noqa: SIM115 - read while the import runs
            except OSError as exc:
                raise CommandError(f"Cannot read {file}: {exc.strerror}") from None
            with stream:
                rows, errors = self.read(stream)
                read[:] = [errors]
                return self.run(rows, errors=errors, dry_run=dry_run)

        try:
            # Read and imported again if the database refused it for what another
            # writer did at the same moment, as an import of the CX Manager is.
            report = again_if_refused(attempt)
        except CommandError:
            raise
        except Exception:
            # Not a bad row (the readers name those, whatever is in them) but the
            # import itself failing, e.g. the database gone: nothing was written.
            # The last line still comes; the traceback follows on stderr.
            errors = [*(read[0] if read else []), FAILED]
            self.write_report(self.report_class(errors=errors), dry_run=dry_run)
            raise
        self.write_report(report, dry_run=dry_run)
        if report.errors:
            sys.exit(1)

    def write_report(self, report, *, dry_run: bool) -> None:
        for error in report.errors:
            self.stderr.write(str(error))
        if not report.errors:
            dry = " (dry run: nothing written)" if dry_run else ""
            self.stdout.write(self.described(report, dry_run=dry_run) + dry)
        self.stdout.write(report.summary())
