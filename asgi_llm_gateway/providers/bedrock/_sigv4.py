"""AWS credentials and SigV4 signing, the one part of the Bedrock provider that needs botocore and threads.

botocore (the `bedrock` extra) is imported only here, and only when a profile's region or credentials are
needed: a Bedrock API key needs nothing else. The credential chain is resolved once, in a worker thread,
and refreshable credentials are frozen per request, in a worker thread when a refresh is due: reading
files or calling STS, SSO or IMDS must never block the event loop.
"""

from __future__ import annotations

import importlib.util
import threading
from typing import Any

import anyio.to_thread
import httpx

from ...errors import GatewayError, redact
from ._errors import KIND

__all__ = ["SIGNING_NAME", "SigV4Signer", "botocore_missing", "has_botocore"]

# The credential scope's service: `bedrock`, not the endpoint's `bedrock-runtime`.
SIGNING_NAME = "bedrock"


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

    async def sign(self, request: httpx.Request, region: str) -> None:
        """Add the SigV4 headers, computed over the final body."""
        frozen = await self._frozen_credentials()
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest

        aws_request = AWSRequest(
            method=request.method,
            url=str(request.url),
            data=request.content,
            headers={"host": request.headers["host"], "content-type": request.headers["content-type"]},
        )
        SigV4Auth(frozen, SIGNING_NAME, region).add_auth(aws_request)
        for name in ("authorization", "x-amz-date", "x-amz-security-token"):
            if name in aws_request.headers:
                request.headers[name] = aws_request.headers[name]

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
