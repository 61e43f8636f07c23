"""The blocking client's ESPI methods are generated from the async ones (scripts/unasync.py):
one hand-written copy, and this test fails when the generated file is stale."""

from __future__ import annotations

import importlib.util
import inspect
import sys
from pathlib import Path

import greenbutton
from greenbutton.client._api_sync import _SyncAPI

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "unasync.py"


def _script():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("unasync", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["unasync"] = module
    spec.loader.exec_module(module)
    return module


def test_the_generated_blocking_code_is_up_to_date() -> None:
    unasync = _script()
    assert len(unasync.PAIRS) == 2
    for source, target in unasync.PAIRS:
        assert target.read_text() == unasync.generate(source.read_text(), source.name), (
            f"{target.name} is stale: run python scripts/unasync.py"
        )


def test_the_generator_drops_async_only_blocks_and_awaits() -> None:
    unasync = _script()
    source = (
        "class _AsyncAPI:\n"
        "    # unasync: async-only\n"
        "    async def _akey(self) -> str:\n"
        "        return 'x'\n"
        "\n"
        "    # unasync: end\n"
        "    async def get(self) -> str:\n"
        '        """See AsyncClient.get."""\n'
        "        async for chunk in self.body.aiter_bytes():\n"
        "            await self.limiter.acquire_async()\n"
        "        await anyio.sleep(1)  # unasync: self.sleep(1)\n"
        "        return await self._run(await self._akey())\n"
    )
    out = unasync.generate(source)
    assert "_akey" not in out.split("def get")[0]  # the async-only block is gone
    assert "def get(self) -> str:" in out and "async def" not in out and "await" not in out
    assert "class _SyncAPI:" in out and "See Client.get." in out
    assert "return self._run(self._key())" in out
    assert "for chunk in self.body.iter_bytes():" in out and "self.limiter.acquire()" in out
    assert "        self.sleep(1)\n" in out and "anyio" not in out


def test_both_clients_offer_the_same_methods_with_the_same_signatures() -> None:
    def public(cls: type) -> dict[str, inspect.Signature]:
        return {
            name: inspect.signature(member)
            for name, member in inspect.getmembers(cls, inspect.isfunction)
            if not name.startswith("_") and name not in {"close", "aclose"}
        }

    sync, asynchronous = public(greenbutton.Client), public(greenbutton.AsyncClient)
    assert set(sync) == set(asynchronous)
    assert len(sync) > 20
    for name in sync:
        assert str(sync[name]) == str(asynchronous[name]), name
    generated = [name for name in vars(_SyncAPI) if not name.startswith("_")]
    assert len(generated) > 20
    for name in generated:
        assert inspect.iscoroutinefunction(getattr(greenbutton.AsyncClient, name)), name
