"""Where an S3 store is and how to sign in to it, the standard AWS way.

``s3://BUCKET[/PREFIX]`` names the store; endpoint, region and credentials come from the
AWS variables (``AWS_ENDPOINT_URL``, ``AWS_REGION``, ``AWS_ACCESS_KEY_ID``, ...) or, for
what they leave out, from the profile (``AWS_PROFILE``, else ``default``) of the shared
files ``~/.aws/config`` and ``~/.aws/credentials`` (``AWS_CONFIG_FILE``,
``AWS_SHARED_CREDENTIALS_FILE``). The S3 client reads none of those files itself, so they are
read here. SSO and assume-role profiles need a helper that exports plain variables
(``aws configure export-credentials --format env``); they are not followed here.

Nothing here ever puts a secret into a message or a ``repr``.
"""

from __future__ import annotations

import configparser
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from lizardctl.core.errors import UsageError

SCHEME = "s3://"
DEFAULT_REGION = "us-east-1"
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_BUCKET_RULE = (
    "3 to 63 characters of a-z, 0-9, '.' and '-', starting and ending with a letter or digit"
)


def is_s3_url(location: object) -> bool:
    """Whether a ``--store`` value names an S3 store rather than a folder."""
    return isinstance(location, str) and location.lower().startswith(SCHEME)


def parse_s3_url(url: str) -> tuple[str, str]:
    """``(bucket, prefix)`` of ``s3://BUCKET[/PREFIX]``; the prefix without slashes at its
    ends, '' for the whole bucket. A bucket name S3 would refuse is a usage error here, not
    an obscure answer from the server later."""
    rest = url[len(SCHEME) :]
    bucket, _, prefix = rest.partition("/")
    if not _BUCKET.fullmatch(bucket) or ".." in bucket:
        raise UsageError(f"{url!r}: not an S3 bucket name {bucket!r}: {_BUCKET_RULE}")
    prefix = prefix.strip("/")
    parts = prefix.split("/") if prefix else []
    if any(part in ("", ".", "..") for part in parts) or any(
        ord(c) < 32 or c in "\\\x7f" for c in prefix
    ):
        raise UsageError(
            f"{url!r}: not a usable S3 prefix: no empty, '.' or '..' parts, no control "
            "characters or backslashes"
        )
    return bucket, prefix


@dataclass(frozen=True, slots=True)
class S3Settings:
    """One S3 store and what signing in to it takes; ``endpoint`` None is AWS's own."""

    bucket: str
    prefix: str
    region: str = DEFAULT_REGION
    endpoint: str | None = field(default=None, repr=False)  # its user part may hold a secret
    access_key_id: str | None = field(default=None, repr=False)
    secret_access_key: str | None = field(default=None, repr=False)
    session_token: str | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        """The store as the database remembers it: ``s3://BUCKET/PREFIX``."""
        return f"{SCHEME}{self.bucket}/{self.prefix}" if self.prefix else f"{SCHEME}{self.bucket}"

    @property
    def shown_endpoint(self) -> str:
        """The endpoint for messages: scheme, host and port only (a URL's user part could
        hold a password)."""
        if self.endpoint is None:
            return f"https://s3.{self.region}.amazonaws.com"
        parts = urlsplit(self.endpoint)
        host = parts.hostname or "?"
        port = f":{parts.port}" if parts.port else ""
        return f"{parts.scheme}://{host}{port}"

    def secrets(self) -> list[str]:
        """The values no message may contain."""
        return [s for s in (self.secret_access_key, self.session_token) if s]

    def store_options(self) -> dict[str, object]:
        """The client's configuration (obstore's ``S3Config`` keys): what is resolved here
        overrides what the client would read from the environment itself."""
        options: dict[str, object] = {"region": self.region}
        if self.endpoint is not None:
            options["endpoint"] = self.endpoint
            # A custom endpoint (MinIO, SeaweedFS, Ceph) is addressed by path, not by a
            # bucket subdomain the local DNS does not know.
            options["virtual_hosted_style_request"] = False
        if self.access_key_id and self.secret_access_key:
            options["access_key_id"] = self.access_key_id
            options["secret_access_key"] = self.secret_access_key
            if self.session_token:
                options["session_token"] = self.session_token
        return options

    @property
    def allow_http(self) -> bool:
        """A plain-HTTP endpoint (a test server, a LAN gateway) is allowed because it was
        named; the client would otherwise refuse it unless told so separately."""
        return self.endpoint is not None and self.endpoint.lower().startswith("http://")


def resolve(url: str, environ: Mapping[str, str] | None = None) -> S3Settings:
    """The settings for the store ``url``: the variables first, then the profile files."""
    env = os.environ if environ is None else environ
    bucket, prefix = parse_s3_url(url)
    profile = env.get("AWS_PROFILE") or env.get("AWS_DEFAULT_PROFILE") or "default"
    config = _profile(
        _path(env, "AWS_CONFIG_FILE", "config"),
        "default" if profile == "default" else f"profile {profile}",
    )
    credentials = _profile(_path(env, "AWS_SHARED_CREDENTIALS_FILE", "credentials"), profile)
    if env.get("AWS_ACCESS_KEY_ID") and env.get("AWS_SECRET_ACCESS_KEY"):
        keys: Mapping[str, str] = {
            "aws_access_key_id": env["AWS_ACCESS_KEY_ID"],
            "aws_secret_access_key": env["AWS_SECRET_ACCESS_KEY"],
            "aws_session_token": env.get("AWS_SESSION_TOKEN", ""),
        }
    elif credentials.get("aws_access_key_id"):
        keys = credentials
    else:
        keys = config
    endpoint = (
        env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL") or config.get("endpoint_url")
    )
    if endpoint and not _is_http_url(endpoint):
        raise UsageError(
            "the S3 endpoint (AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_S3 or the profile's "
            "endpoint_url) is not an http:// or https:// URL with a host"
        )
    return S3Settings(
        bucket,
        prefix,
        region=env.get("AWS_REGION")
        or env.get("AWS_DEFAULT_REGION")
        or config.get("region")
        or DEFAULT_REGION,
        endpoint=endpoint or None,
        access_key_id=keys.get("aws_access_key_id") or None,
        secret_access_key=keys.get("aws_secret_access_key") or None,
        session_token=keys.get("aws_session_token") or None,
    )


def _is_http_url(text: str) -> bool:
    """What the client can sign requests for; it panics on anything else. Never quoted
    back: an endpoint's user part may hold a password."""
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        return False
    return parts.scheme.lower() in ("http", "https") and bool(parts.hostname)


def _path(env: Mapping[str, str], variable: str, name: str) -> Path:
    given = env.get(variable)
    return Path(given).expanduser() if given else Path.home() / ".aws" / name


def _profile(path: Path, section: str) -> dict[str, str]:
    """One section of an AWS shared file ({} when the file or the section is not there).
    A file that does not parse is a usage error naming the file and line, never quoting
    it: the line may hold a secret."""
    parser = configparser.RawConfigParser(default_section="\x00none")
    try:
        with path.open(encoding="utf-8") as file:
            parser.read_file(file)
    except FileNotFoundError:
        return {}
    except configparser.Error as exc:
        line = getattr(exc, "lineno", None) or getattr(exc, "errors", [(None,)])[0][0]
        where = f" (line {line})" if line else ""
        raise UsageError(f"AWS shared file {path}{where}: not in the INI format") from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise UsageError(f"AWS shared file {path}: cannot read it: {reason}") from None
    if not parser.has_section(section):
        return {}
    return {key.lower(): value.strip() for key, value in parser.items(section)}
