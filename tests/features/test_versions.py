"""The known-good ranges that guard other libraries' private APIs."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError

import pytest

import features.versions as versions


@pytest.fixture
def installed(monkeypatch):
    """Pretend one version of every distribution is installed (``None``: none is)."""

    def pretend(text: str | None) -> None:
        def fake(distribution: str) -> str:
            if text is None:
                raise PackageNotFoundError(distribution)
            return text

        monkeypatch.setattr(versions, "version", fake)
        versions.installed_version.cache_clear()

    yield pretend
    versions.installed_version.cache_clear()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1.6.0", True),
        ("1.7.2", True),
        ("1.9.1", True),
        ("1.9.0rc1", True),
        ("1.9.3.post1", True),
        ("1.5.2", False),
        ("1.10.0", False),
        ("2.0.0", False),
        ("not a version", False),
        (None, False),
    ],
)
def test_known_good_compares_major_and_minor_versions_both_ends_included(
    installed, text, expected
):
    installed(text)
    assert versions.known_good("scikit-learn", ("1.6", "1.9")) is expected


def test_the_installed_version_is_read_from_the_package_metadata():
    from importlib.metadata import version

    assert str(versions.installed_version("numpy")) == version("numpy")
    assert versions.installed_version("no-such-distribution-here") is None
