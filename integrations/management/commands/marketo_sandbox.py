"""Run the bundled Marketo-compatible sandbox server on 127.0.0.1."""

import argparse
import logging
import sys

from django.core.management.base import BaseCommand, CommandError

from integrations.marketo.sandbox.seed import SeedError
from integrations.marketo.sandbox.server import SandboxServer, load_seed


def _port(value: str) -> int:
    try:
        port = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a port number; use 0 to 65535.") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a port number; use 0 to 65535.")
    return port


class Command(BaseCommand):
    # The sandbox uses no models, URLs or other Django machinery, so it starts
    # even while the project's own checks fail.
    requires_system_checks = []
    help = (
        "Run a stateful Marketo-compatible REST server on 127.0.0.1 for demos and tests. "
        "The /_sandbox/ control endpoint (fault injection, state dump) is on unless --no-control is given."
    )

    def add_arguments(self, parser):
        parser.add_argument("--port", type=_port, default=8701, help="TCP port on 127.0.0.1 (default 8701; 0 picks a free port).")
        parser.add_argument("--seed", help="Seed JSON file with API clients, channels, folders, programs, lead fields and leads (default: the bundled demo seed).")
        parser.add_argument("--rate-limit-calls", type=int, help="Calls allowed per rate window (Marketo: 100).")
        parser.add_argument("--rate-window-seconds", type=float, help="Length of the sliding rate window in seconds (Marketo: 20).")
        parser.add_argument("--max-concurrent", type=int, help="Calls allowed in flight at once (Marketo: 10).")
        parser.add_argument("--daily-quota", type=int, help="Counted calls allowed per day (Marketo: usually 50000).")
        parser.add_argument("--token-ttl-seconds", type=float, help="Lifetime of an access token in seconds (Marketo: 3600).")
        parser.add_argument("--no-control", action="store_true", help="Disable the /_sandbox/ control endpoint.")

    def handle(self, *args, **options):
        try:
            seed = load_seed(options["seed"]) if options["seed"] else None
            server = SandboxServer(seed, options["port"], control_enabled=not options["no_control"], access_log=True)
        except SeedError as error:
            raise CommandError(str(error)) from error
        except OSError as error:
            raise CommandError(
                f"Cannot listen on 127.0.0.1:{options['port']}: {error.strerror}. Pick another port with --port."
            ) from error

        # Flags override both Marketo's defaults and any limits in the seed.
        overrides = {
            name: options[name]
            for name in ("rate_limit_calls", "rate_window_seconds", "max_concurrent", "daily_quota", "token_ttl_seconds")
            if options[name] is not None
        }
        problems = server.state.limits.update(overrides)
        if problems:
            server.stop()
            raise CommandError(" ".join(problems))

        # Django's LOGGING normally sends INFO records to the console already;
        # without it, access lines (which never contain query strings) still
        # reach stderr.
        sandbox_logger = logging.getLogger("integrations.marketo.sandbox")
        sandbox_logger.setLevel(logging.INFO)
        if not logging.getLogger().handlers:
            handler = logging.StreamHandler(sys.stderr)
            handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
            sandbox_logger.addHandler(handler)

        self.stdout.write(f"Marketo sandbox listening on {server.url}")
        self.stdout.write(f"  REST base URL: {server.url}/rest   Identity URL: {server.url}/identity")
        self.stdout.flush()
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            self.stdout.write("Marketo sandbox stopped.")
