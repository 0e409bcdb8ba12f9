"""Transport: the one httpx.Client of an SDG handle, with its base URL and API key. Every answer
outside 2xx becomes an SDGError here, and so does a gateway that cannot be reached."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from sdg_client.errors import SDGError


def _decoded(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text


class Transport:
    def __init__(self, base_url: str, api_key: str | None, timeout: float | httpx.Timeout, user_agent: str):
        headers = {"User-Agent": user_agent}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        self.http = httpx.Client(base_url=base_url.rstrip("/"), headers=headers, timeout=timeout)

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.HTTPError as err:
            raise SDGError(f"{method} {self.http.base_url}{path} failed: {err}", detail=str(err)) from err
        if not response.is_success:
            raise SDGError.from_response(method, path, response.status_code, _decoded(response))
        return response

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        return self.request(method, path, **kwargs).json()

    def download(self, path: str, target: Path) -> httpx.Headers:
        """Streams the answer to `target` (written whole or not at all); returns its headers."""
        partial = target.with_name(target.name + ".part")
        try:
            with self.http.stream("GET", path) as response:
                if not response.is_success:
                    response.read()
                    raise SDGError.from_response("GET", path, response.status_code, _decoded(response))
                with partial.open("wb") as file:
                    for chunk in response.iter_bytes():
                        file.write(chunk)
        except httpx.HTTPError as err:
            partial.unlink(missing_ok=True)
            raise SDGError(f"GET {self.http.base_url}{path} failed: {err}", detail=str(err)) from err
        partial.replace(target)
        return response.headers

    def close(self) -> None:
        self.http.close()
