"""S3 store settings: the URL, then the AWS variables, then the profile files, and no
secret in any message or repr."""

from __future__ import annotations

from pathlib import Path

import pytest

from lizardctl.core.errors import UsageError
from lizardctl.core.store.s3config import (
    DEFAULT_REGION,
    S3Settings,
    is_s3_url,
    parse_s3_url,
    resolve,
)

SECRET = "wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("s3://photos", ("photos", "")),
        ("s3://photos/", ("photos", "")),
        ("s3://my.bucket-1/night/2026", ("my.bucket-1", "night/2026")),
        ("s3://abc/a/b/", ("abc", "a/b")),
    ],
)
def test_s3_urls_give_bucket_and_prefix(url: str, expected: tuple[str, str]) -> None:
    assert is_s3_url(url)
    assert parse_s3_url(url) == expected


@pytest.mark.parametrize(
    "url",
    [
        "s3://",
        "s3://ab",
        "s3://" + "a" * 64,
        "s3://Photos",
        "s3://under_score",
        "s3://-dash",
        "s3://dots..twice",
        "s3://photos/a//b",
        "s3://photos/../up",
        "s3://photos/new\nline",
    ],
)
def test_bad_bucket_names_and_prefixes_are_usage_errors(url: str) -> None:
    with pytest.raises(UsageError, match=r"not an S3 bucket name|not a usable S3 prefix"):
        parse_s3_url(url)


def test_folders_are_not_s3_urls() -> None:
    assert not is_s3_url("photos")
    assert not is_s3_url("/srv/s3://x")
    assert not is_s3_url(Path("s3://x"))


def write_profiles(tmp_path: Path) -> dict[str, str]:
    config = tmp_path / "config"
    config.write_text(
        "[default]\nregion = eu-west-1\nendpoint_url = http://minio.lan:9000\n\n"
        "[profile night]\nregion = eu-central-1\n"
        "aws_access_key_id = AKCONFIGNIGHT\naws_secret_access_key = config-secret\n"
    )
    credentials = tmp_path / "credentials"
    credentials.write_text(
        f"[default]\naws_access_key_id = AKFILEDEFAULT\naws_secret_access_key = {SECRET}\n"
        "aws_session_token = file-token\n"
    )
    return {"AWS_CONFIG_FILE": str(config), "AWS_SHARED_CREDENTIALS_FILE": str(credentials)}


def test_the_default_profile_of_the_shared_files(tmp_path: Path) -> None:
    settings = resolve("s3://photos/p", write_profiles(tmp_path))
    assert settings == S3Settings(
        "photos",
        "p",
        region="eu-west-1",
        endpoint="http://minio.lan:9000",
        access_key_id="AKFILEDEFAULT",
        secret_access_key=SECRET,
        session_token="file-token",
    )
    assert settings.allow_http
    assert settings.shown_endpoint == "http://minio.lan:9000"


def test_aws_profile_picks_a_config_section_with_its_own_keys(tmp_path: Path) -> None:
    env = write_profiles(tmp_path) | {"AWS_PROFILE": "night"}
    settings = resolve("s3://photos", env)
    assert (settings.region, settings.endpoint) == ("eu-central-1", None)
    assert (settings.access_key_id, settings.secret_access_key) == (
        "AKCONFIGNIGHT",
        "config-secret",
    )
    assert settings.shown_endpoint == "https://s3.eu-central-1.amazonaws.com"
    assert not settings.allow_http


def test_the_variables_win_over_the_files(tmp_path: Path) -> None:
    env = write_profiles(tmp_path) | {
        "AWS_ACCESS_KEY_ID": "AKENV",
        "AWS_SECRET_ACCESS_KEY": "env-secret",
        "AWS_REGION": "ap-south-1",
        "AWS_ENDPOINT_URL": "https://s3.example.net",
    }
    settings = resolve("s3://photos", env)
    assert (settings.access_key_id, settings.secret_access_key, settings.session_token) == (
        "AKENV",
        "env-secret",
        None,  # the file's token belongs to the file's keys
    )
    assert (settings.region, settings.endpoint) == ("ap-south-1", "https://s3.example.net")
    options = settings.store_options()
    assert options["virtual_hosted_style_request"] is False
    assert options["access_key_id"] == "AKENV"


def test_no_files_and_no_variables_leave_the_client_its_own_chain(tmp_path: Path) -> None:
    env = {
        "AWS_CONFIG_FILE": str(tmp_path / "none"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
    }
    settings = resolve("s3://photos", env)
    assert settings.store_options() == {"region": DEFAULT_REGION}


@pytest.mark.parametrize(
    "endpoint", ["notaurl", "ftp://127.0.0.1:9", "http://", f"http://u:{SECRET}@h:port"]
)
def test_an_endpoint_that_is_not_an_http_url_is_a_usage_error(endpoint: str) -> None:
    with pytest.raises(UsageError, match=r"not an http:// or https:// URL") as raised:
        resolve("s3://photos", {"AWS_ENDPOINT_URL": endpoint, "AWS_CONFIG_FILE": "/none"})
    assert SECRET not in str(raised.value)


def test_a_broken_shared_file_is_named_but_never_quoted(tmp_path: Path) -> None:
    credentials = tmp_path / "credentials"
    credentials.write_text(f"aws_secret_access_key = {SECRET}\n[default]\n")
    env = {"AWS_SHARED_CREDENTIALS_FILE": str(credentials), "AWS_CONFIG_FILE": "/nonexistent"}
    with pytest.raises(UsageError) as raised:
        resolve("s3://photos", env)
    assert str(raised.value) == f"AWS shared file {credentials} (line 1): not in the INI format"


def test_secrets_stay_out_of_repr_and_endpoint_user_info_out_of_messages() -> None:
    settings = S3Settings(
        "photos",
        "",
        endpoint=f"https://user:{SECRET}@s3.example.net:8443/",
        access_key_id="AK",
        secret_access_key=SECRET,
        session_token="token-" + SECRET,
    )
    assert SECRET not in repr(settings)
    assert settings.shown_endpoint == "https://s3.example.net:8443"
    assert settings.url == "s3://photos"
