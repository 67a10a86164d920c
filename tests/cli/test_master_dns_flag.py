"""``corral master --dns``: PORT or HOST:PORT, loopback by default; bad input is one line and exit 2."""

import pytest
import typer

from corral.cli.master import parse_dns_address


@pytest.mark.parametrize("text, expected", [("8053", ("127.0.0.1", 8053)), ("127.0.0.9:53", ("127.0.0.9", 53)),
                                            (":0", ("127.0.0.1", 0))])
def test_a_dns_address_is_a_port_with_an_optional_host(text, expected):
    assert parse_dns_address(text) == expected


@pytest.mark.parametrize("text", ["dns", "127.0.0.1:", "1:70000", "host:-1"])
def test_a_bad_dns_address_names_the_flag_and_exits_2(text, capsys):
    with pytest.raises(typer.Exit) as e:
        parse_dns_address(text)
    assert e.value.exit_code == 2
    assert "--dns" in capsys.readouterr().err
