"""The `spendgate` command, for people who install spendgate with pip.

    spendgate run --config PATH [--listen-host H] [--listen-port P] [-- MITMDUMP ARGS...]
    spendgate allow-hosts [--config PATH]
    spendgate migrate DATABASE_URL

`run` starts mitmdump with the addon and the recommended flags: `--allow-hosts` (only
provider traffic is decrypted; the pattern comes from the provider registry and the
config's own `providers:` hosts), `connection_strategy=lazy` (a refused call never opens
a connection upstream), a listen address on loopback unless told otherwise, and
`flow_detail=0` (mitmdump's per-flow lines would print keys sent in URLs).
`mitmdump -s addon/budget.py` keeps working; this only spells the flags out.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ["main", "mitmdump_args"]

BUDGET_SCRIPT = Path(__file__).with_name("budget.py")


def _allow_hosts(config_path: str | None) -> str:
    """The registry's pattern, with the config's custom provider hosts when a config is given."""
    from metering.runtime import custom_providers
    from providers.registry import BUILTIN, allow_hosts_pattern

    custom = {}
    if config_path:
        from config.load import load_config

        custom = custom_providers(load_config(Path(config_path)))
    return allow_hosts_pattern((*custom.values(), *BUILTIN))


def mitmdump_args(config: str, listen_host: str, listen_port: int, extra: list[str]) -> list[str]:
    """mitmdump's command line for `spendgate run`."""
    return [
        "-s", str(BUDGET_SCRIPT),
        "--set", f"budget_config={config}",
        "--set", "connection_strategy=lazy",
        "--allow-hosts", _allow_hosts(config),
        "--listen-host", listen_host,
        "--listen-port", str(listen_port),
        # mitmdump's per-flow lines are printed, not logged, so the log redaction can't reach
        # a key sent in a URL (`?key=`): off unless asked for (`-- --set flow_detail=1`)
        "--set", "flow_detail=0",
        *extra,
    ]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="spendgate", description="Hard budgets and alerts on LLM API spend.")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="start the proxy (mitmdump with the spendgate addon)")
    run.add_argument("--config", required=True, help="the spendgate YAML config")
    run.add_argument("--listen-host", default="127.0.0.1",
                     help="address the proxy listens on (default 127.0.0.1; see README, Security)")
    run.add_argument("--listen-port", type=int, default=8080, help="port the proxy listens on (default 8080)")
    run.add_argument("mitmdump_args", nargs="*", help="more mitmdump arguments, after --")
    hosts = commands.add_parser("allow-hosts", help="print the recommended --allow-hosts pattern")
    hosts.add_argument("--config", help="also decrypt the custom provider hosts of this config")
    migrate = commands.add_parser("migrate", help="bring a ledger's schema up to date")
    migrate.add_argument("database_url", help="sqlite:///path.db or postgresql://...")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(sys.argv[1:] if argv is None else argv)
    from config.load import ConfigError

    try:
        if args.command == "allow-hosts":
            print(_allow_hosts(args.config))
            return 0
        if args.command == "migrate":
            from ledger.migrate_command import main as migrate

            return migrate([args.database_url])
        command = mitmdump_args(args.config, args.listen_host, args.listen_port, args.mitmdump_args)
    except ConfigError as e:
        print(f"spendgate: {e}", file=sys.stderr)
        return 2
    from mitmproxy.tools.main import mitmdump

    return mitmdump(command) or 0


if __name__ == "__main__":
    raise SystemExit(main())
