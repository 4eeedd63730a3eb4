"""AWS credentials and SigV4 signing, the one part of the Bedrock provider that needs botocore and threads.

botocore (the `bedrock` extra) is imported only here, and only when a profile's region or credentials are
needed: a Bedrock API key needs nothing else. The credential chain is resolved once, in a worker thread,
and refreshable credentials are frozen per request, in a worker thread when a refresh is due: reading
files or calling STS, SSO or IMDS must never block the event loop.

Credentials come from botocore; the signature is computed here, because botocore's `SigV4Auth` derives the
signing key (four HMACs over the secret, the date, the region and the service) and builds an `AWSRequest`
on every request: about 60 µs per call, most of a Bedrock request's gateway CPU. The key changes only with
the secret, the UTC day, the region and the service, so it is derived once for them and kept (one entry);
what remains per request is one SHA-256 of the body, one of the canonical request and one HMAC (the
canonical request's lines before the date, one set per URL, and the date, one per second, are kept too). The
canonical request is botocore's for these requests, exactly: the path as sent, percent-encoded once more
(AWS double-encodes every service's path but S3's), no query, the headers `content-type`, `host`,
`x-amz-date` and, with temporary credentials, `x-amz-security-token`. tests/providers/test_bedrock.py checks
the headers against botocore's for the same request and time.
"""

from __future__ import annotations

import hashlib
import hmac
import importlib.util
import re
import threading
import time
from typing import Any
from urllib.parse import quote

import anyio.to_thread
import httpx

from ...errors import GatewayError, redact
from ...memo import remember
from ._errors import KIND

__all__ = ["SIGNING_NAME", "SigV4Signer", "botocore_missing", "has_botocore"]

# The credential scope's service: `bedrock`, not the endpoint's `bedrock-runtime`.
SIGNING_NAME = "bedrock"


# The signed headers, in the canonical request's order.
_SIGNED = "content-type;host;x-amz-date"
_SIGNED_WITH_TOKEN = "content-type;host;x-amz-date;x-amz-security-token"

#: A path that is already percent-encoded with nothing left to encode but its escapes (what model_ids makes).
_ENCODED_PATH = re.compile(r"[A-Za-z0-9\-._~/%]*")


def _canonical_path(path: str) -> str:
    """The path encoded once more, as botocore does (`quote(path, safe="/~")`): for an encoded path that
    is just its `%` (a third of the cost of `quote`, which walks every character in Python)."""
    return path.replace("%", "%25") if _ENCODED_PATH.fullmatch(path) else quote(path, safe="/~")


def has_botocore() -> bool:
    return importlib.util.find_spec("botocore") is not None


def botocore_missing() -> ImportError:
    return ImportError(
        "BedrockProvider needs botocore to sign requests with AWS credentials: "
        "pip install 'asgi-llm-gateway[bedrock]' (or pass a Bedrock API key as api_key=)"
    )


class SigV4Signer:
    """Signs requests with explicit keys, or with the credentials botocore finds as the AWS CLI does
    (environment, shared files and profiles, SSO, web identity, container and instance roles)."""

    def __init__(
        self,
        *,
        profile: str | None = None,
        access_key: str | None = None,
        secret_key: str | None = None,
        session_token: str | None = None,
    ) -> None:
        self.profile = profile
        self._access_key = access_key
        self._secret_key = secret_key
        self._session_token = session_token
        self._session: Any = None
        self._credentials: Any = None
        self._frozen: Any = None  # the last credentials a request was signed with
        self._lock = threading.Lock()
        #: (secret, day, region) and an HMAC keyed with the signing key derived from them.
        self._key: tuple[tuple[str, str, str], hmac.HMAC] | None = None
        #: The last whole second signed at and its `x-amz-date`.
        self._stamps: tuple[int, str] = (-1, "")
        #: (method, raw path, host, content type) -> the canonical request's first lines.
        self._heads: dict[tuple[str, bytes, str, str], str] = {}

    def __repr__(self) -> str:  # never shows a credential
        return f"{type(self).__name__}(profile={self.profile!r})"

    def secrets(self) -> tuple[str | None, ...]:
        """The secret parts of the credentials given and of the last ones signed with."""
        frozen = self._frozen
        return (
            self._secret_key,
            self._session_token,
            frozen.secret_key if frozen is not None else None,
            frozen.token if frozen is not None else None,
        )

    def profile_region(self) -> str | None:
        """The region of the AWS profile (reads the config file: call it once, at construction)."""
        if not has_botocore():
            return None
        region = self._botocore_session().get_config_variable("region")
        return str(region) if region else None

    def _botocore_session(self) -> Any:
        if self._session is None:
            import botocore.session

            self._session = botocore.session.Session(profile=self.profile)
        return self._session

    async def sign(self, request: httpx.Request, region: str, now: float | None = None) -> None:
        """Add the SigV4 headers, computed over the final body (`now`: the signing time, for tests)."""
        request.headers.update(
            await self.headers(
                request.method,
                request.url.raw_path,
                request.headers["host"],
                request.headers["content-type"],
                request.content,
                region,
                now,
            )
        )

    async def headers(
        self,
        method: str,
        raw_path: bytes,
        host: str,
        content_type: str,
        content: bytes,
        region: str,
        now: float | None = None,
    ) -> dict[str, str]:
        """The SigV4 headers (`authorization`, `x-amz-date`, and the session token if any) of a request with
        this path (as sent: encoded), `host`, content type and body, signed over all of them."""
        frozen = await self._frozen_credentials()
        stamp = self._stamp(now)
        token = frozen.token
        signed = _SIGNED_WITH_TOKEN if token else _SIGNED
        token_line = f"x-amz-security-token:{token}\n" if token else ""
        head = self._canonical_head(method, raw_path, host, content_type)
        canonical = f"{head}x-amz-date:{stamp}\n{token_line}\n{signed}\n{hashlib.sha256(content).hexdigest()}"
        scope = f"{stamp[:8]}/{region}/{SIGNING_NAME}/aws4_request"
        to_sign = f"AWS4-HMAC-SHA256\n{stamp}\n{scope}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
        mac = self._signing_key(frozen.secret_key, stamp[:8], region).copy()
        mac.update(to_sign.encode())
        signature = mac.hexdigest()
        added = {
            "authorization": f"AWS4-HMAC-SHA256 Credential={frozen.access_key}/{scope}, "
            f"SignedHeaders={signed}, Signature={signature}",
            "x-amz-date": stamp,
        }
        if token:
            added["x-amz-security-token"] = token
        return added

    def _stamp(self, now: float | None) -> str:
        """`x-amz-date` for `now` (the current time if None): formatted once per second."""
        second = int(time.time() if now is None else now)
        cached = self._stamps
        if cached[0] != second:
            cached = self._stamps = (second, time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(second)))
        return cached[1]

    def _canonical_head(self, method: str, raw_path: bytes, host: str, content_type: str) -> str:
        """The canonical request up to the date header: the same for every request to one URL (one per model
        and operation), so it is built once for them (at most 256 kept)."""
        key = (method, raw_path, host, content_type)
        head = self._heads.get(key)
        if head is None:
            path = _canonical_path(raw_path.partition(b"?")[0].decode("ascii"))
            content_type = " ".join(content_type.split())
            head = remember(
                self._heads, key, f"{method}\n{path}\n\ncontent-type:{content_type}\nhost:{host}\n"
            )
        return head

    def _signing_key(self, secret: str, day: str, region: str) -> hmac.HMAC:
        """An HMAC keyed with the signing key for (secret, day, region), to copy per request: derived once,
        then reused until one of them changes (keying an HMAC costs more than hashing a short string)."""
        cached = self._key
        if cached is not None and cached[0] == (secret, day, region):
            return cached[1]
        key = ("AWS4" + secret).encode()
        for part in (day, region, SIGNING_NAME, "aws4_request"):
            key = hmac.digest(key, part.encode(), "sha256")
        keyed = hmac.new(key, digestmod="sha256")
        self._key = ((secret, day, region), keyed)
        return keyed

    async def _frozen_credentials(self) -> Any:
        credentials = self._credentials
        refresh_needed = getattr(credentials, "refresh_needed", None)
        if credentials is not None and not (refresh_needed is not None and refresh_needed()):
            frozen = credentials.get_frozen_credentials()
        else:  # first use, or a refresh is due: files, STS, SSO or IMDS may be read
            frozen = await anyio.to_thread.run_sync(self._load_frozen_credentials)
        self._frozen = frozen
        return frozen

    def _load_frozen_credentials(self) -> Any:
        """Resolve the credential chain once, then freeze (refreshing if due). Runs in a worker thread."""
        try:
            with self._lock:
                if self._credentials is None:
                    self._credentials = self._resolve_credentials()
            return self._credentials.get_frozen_credentials()
        except GatewayError:
            raise
        except Exception as exc:  # botocore's errors: no credentials, SSO token expired, STS refused...
            raise GatewayError(
                redact(
                    f"{KIND}: AWS credentials could not be loaded ({type(exc).__name__}: {exc})",
                    self.secrets(),
                ),
                status=502,
                type="server_error",
                code="upstream_authentication_error",
            ) from None

    def _resolve_credentials(self) -> Any:
        if not has_botocore():
            raise botocore_missing()
        if self._access_key is not None:
            from botocore.credentials import Credentials

            return Credentials(self._access_key, self._secret_key, self._session_token)
        credentials = self._botocore_session().get_credentials()
        if credentials is None:
            raise GatewayError(
                f"{KIND}: no AWS credentials found (environment, shared files, SSO or instance role)",
                status=502,
                type="server_error",
                code="upstream_authentication_error",
            )
        return credentials
