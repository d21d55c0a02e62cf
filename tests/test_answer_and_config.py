import pytest

from tandem.answer import last_boxed
from tandem.config import ConfigError, build_config


@pytest.mark.parametrize(
    "text,expected",
    [
        ("so \\boxed{42}.", "42"),
        ("\\boxed{1} then \\boxed{\\frac{1}{2}}", "\\frac{1}{2}"),
        ("\\boxed{ \\{1, 2\\} }", "\\{1, 2\\}"),
        ("\\boxed {x^{2}+1}", "x^{2}+1"),
        ("no box here", None),
        ("cut off \\boxed{\\frac{1}{2", None),
        ("\\fbox{7}", "7"),
    ],
)
def test_last_boxed(text, expected):
    assert last_boxed(text) == expected


def test_config_layers_file_options_and_set(tmp_path):
    f = tmp_path / "c.toml"
    f.write_text('method = "glimprouter"\nseed = 3\n[settings]\nte = 0.5\nwindow = 6\n')
    cfg = build_config(f, ["te=1.1", "layer=5"], seed=7)
    assert cfg.method == "glimprouter" and cfg.seed == 7
    assert cfg.settings.te == 1.1 and cfg.settings.window == 6 and cfg.settings.layer == 5


def test_config_errors_are_clear(tmp_path):
    with pytest.raises(ConfigError, match="unknown setting 'tr3'.*known: te"):
        build_config(None, ["tr3=1"])
    with pytest.raises(ConfigError, match="NAME=VALUE"):
        build_config(None, ["te"])
    with pytest.raises(ConfigError, match="window"):
        build_config(None, ["window=1"])
    with pytest.raises(ConfigError, match="not found"):
        build_config(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("method = ")
    with pytest.raises(ConfigError, match="not valid TOML"):
        build_config(bad)


def test_delimiter_escape_from_shell():
    assert build_config(None, ["delimiter=\\n"]).settings.delimiter == "\n"
