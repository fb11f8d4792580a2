"""End to end: a bad budget config stops mitmdump at start-up, naming the key path.

mitmdump is started directly (the command line MitmProxy would use), so the test sees
its exit code and output rather than a fixture's start-up failure. One case is enough
here: every config problem takes the same path (ConfigLoader._refuse); tests/test_config.py
checks the messages one by one.
"""

from __future__ import annotations

import subprocess

import yaml

from proxy import DEFAULT_SCRIPT, MitmProxy, free_port


def test_a_bad_duration_stops_mitmdump_with_the_key_path(tmp_path, fake_provider_session):
    path = tmp_path / "budget.yaml"
    path.write_text(yaml.safe_dump({
        "litellm_settings": {"max_budget": 10, "budget_duration": "30x"},
        "general_settings": {"database_url": f"sqlite:///{tmp_path}/ledger.db"},
    }))
    proxy = MitmProxy(fake_provider_session.url, script=DEFAULT_SCRIPT, budget_config=path, workdir=tmp_path)
    proxy.confdir.mkdir(parents=True)
    done = subprocess.run(proxy.command(free_port()), capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL, cwd=DEFAULT_SCRIPT.parents[1])
    output = done.stdout + done.stderr
    assert done.returncode == 2, output
    assert ("litellm_settings.budget_duration: '30x' is not a duration "
            "(use 30s, 15m, 12h, 1d, 7d, 30d, 1mo)") in output
    assert "Traceback" not in output and "listening" not in output  # the message only
    assert not (tmp_path / "ledger.db").exists()  # stopped before opening the ledger


def test_stream_large_bodies_stops_mitmdump_saying_why(tmp_path, fake_provider_session):
    """mitmproxy would forward a large request body before spendgate's hooks read it (no
    budget check) and hand them a large reply empty: the option is refused at start-up."""
    proxy = MitmProxy(fake_provider_session.url, script=DEFAULT_SCRIPT, workdir=tmp_path,
                      options={"stream_large_bodies": "1m"})
    proxy.confdir.mkdir(parents=True)
    done = subprocess.run(proxy.command(free_port()), capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL, cwd=DEFAULT_SCRIPT.parents[1])
    output = done.stdout + done.stderr
    assert done.returncode == 2, output
    assert "stream_large_bodies: spendgate reads each provider request whole" in output
    assert "Traceback" not in output and "listening" not in output
