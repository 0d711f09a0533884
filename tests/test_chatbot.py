"""The chatbot case study end to end on its test profile (knowledge → index → train → evaluate → register → serve →
monitor) against the case study's floors, then the registered assistant served again: conversations that survive a
server restart, and answers that fail the grounding check never reaching the user, whole or streamed."""
import json
import os
import re

import httpx
import pytest

from conftest import first_run, run_lesson, workbench_serve
from workbench.chat import ContextStore, chat_app, from_table, source_passage
from workbench.generator import pieces
from workbench.serve import BackgroundServer
from workbench.stores import Stores


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    """The case study run once on its test profile, by its lesson executed in batch (the lesson's exercises and checks
    run too): (workspace, each step's outputs)."""
    ws = tmp_path_factory.mktemp("chatbot") / "ws"
    run_lesson("16_chatbot.ipynb", ws, timeout=1200)
    record = first_run(ws, "chatbot")
    assert record["status"] == "succeeded", record
    return ws, {name: step["outputs"] for name, step in record["steps"].items()}


def test_the_case_study_meets_its_floors(case):
    ws, steps = case
    index = steps["index"]
    assert index["hybrid_recall"] >= 0.9 and index["hybrid_recall"] > max(index["bm25_recall"], index["dense_recall"])
    evaluation = steps["evaluate"]
    assert evaluation["ungrounded"] == 0, evaluation
    assert evaluation["unanswerable_answered"] <= 0.02 and evaluation["red_team_stopped"] >= 0.95, evaluation
    assert evaluation["closed_book_hallucinated"] > 3 * evaluation["rag_hallucinated"], evaluation   # the pattern
    assert steps["register"]["stage"] == "staging", steps["register"]
    serve = steps["serve"]
    assert serve["audited"] == serve["turns"] > 20 and serve["p95_ms"] < 1000, serve      # every turn audited
    monitor = steps["monitor"]
    assert monitor["unanswered_launch"] > monitor["unanswered_reference"] and monitor["alerts"] >= 1, monitor
    data = Stores(ws).data
    assert data.card("brightcart-index").parents == [steps["knowledge"]["kb"]]           # the index's lineage
    assert data.card("brightcart-questions").parents == [steps["knowledge"]["kb"]]


def served(ws, store, **options):
    "The registered assistant behind the chat endpoint, with its context in `store`."
    stores = Stores(ws)
    assistant, record = stores.registry.load("brightcart-assistant@staging")
    manager = assistant.manager(ContextStore(store), from_table(stores.data.load(assistant.cfg.knowledge)))
    for name, value in options.items():
        setattr(manager, name, value)
    return BackgroundServer(chat_app(manager, record["name"], record["version"]))


def test_workbench_serve_keeps_a_conversation_across_a_restart(case):
    ws, _ = case
    env = dict(os.environ, WORKBENCH_HOME=str(ws))
    serve = lambda: workbench_serve("brightcart-assistant@staging", ws / "registry" / "registry.db", env)
    with serve() as (url, _):
        first = httpx.post(f"{url}/v1/chat/c-1", json={"message": "How long do I have to return the Aria Max?"})
        model = httpx.post(f"{url}/v1/models/brightcart-assistant/predict", json={"inputs": [[0.0] * 384]})
    assert first.json()["action"] == "ask", first.text
    assert model.status_code == 200                                     # the model routes are still there
    with serve() as (url, _):                                           # a new process on the same workspace
        second = httpx.post(f"{url}/v1/chat/c-1", json={"message": "Germany"}).json()
        other = httpx.post(f"{url}/v1/chat/c-2", json={"message": "Germany"}).json()
    assert (second["action"], second["passages"]) == ("answer", ["returns-aria-max-germany"]), second
    assert other["action"] != "answer"                                  # another conversation knows nothing of it
    logged = [e for e in Stores(ws).governance.predictions.entries() if e["details"].get("conversation") == "c-1"]
    assert [e["details"]["output"]["action"] for e in logged] == ["ask", "answer"]             # both turns audited
    assert logged[-1]["details"]["output"]["passages"] == ["returns-aria-max-germany"]


def events(url: str, conversation: str, message: str) -> list[tuple[str, dict]]:
    "The server-sent events of one streamed turn, as (event, data) pairs."
    with httpx.stream("POST", f"{url}/v1/chat/{conversation}/stream", json={"message": message}) as response:
        lines = [line for line in response.iter_lines() if line]
    return [(e.removeprefix("event: "), json.loads(d.removeprefix("data: "))) for e, d in zip(lines[::2], lines[1::2])]


def test_an_ungrounded_answer_never_reaches_the_user(case, tmp_path):
    ws, _ = case
    shifted = lambda text: re.sub(r"\d+", lambda m: str(int(m.group()) + 7), text, count=1)     # one fact changed
    def lying(intent, slots, hits):
        source, text = source_passage(hits, slots)
        return source, iter(pieces(shifted(text)))
    def half_true(intent, slots, hits):
        source, text = source_passage(hits, slots)
        return source, iter(pieces(f"{text} Also, {shifted(text)[0].lower()}{shifted(text)[1:]}"))
    with served(ws, tmp_path / "chat.db", answer=lying) as url:
        whole = httpx.post(f"{url}/v1/chat/l-1", json={"message": "How much is the Vela 16 in Spain?"}).json()
        streamed = events(url, "l-2", "How much is the Vela 16 in Spain?")
    assert (whole["action"], whole["withheld"]) == ("fallback", 1), whole
    assert [e for e, _ in streamed] == ["turn"] and streamed[0][1]["action"] == "fallback", streamed
    with served(ws, tmp_path / "chat.db", answer=half_true) as url:
        streamed = events(url, "h-1", "How much is the Vela 16 in Spain?")
    sentences, (_, turn) = [d["text"] for e, d in streamed[:-1]], streamed[-1]
    assert len(sentences) == 1 and turn["withheld"] == 1 and turn["reply"] == sentences[0], streamed
    assert "Also" not in turn["reply"]                                  # the changed fact was never sent


def test_the_chat_boundary_refuses_bad_requests(case, tmp_path):
    ws, _ = case
    with served(ws, tmp_path / "chat.db") as url:
        refused = {"id": httpx.post(f"{url}/v1/chat/a.b", json={"message": "hi"}),
                   "long id": httpx.post(f"{url}/v1/chat/{'x' * 65}", json={"message": "hi"}),
                   "empty": httpx.post(f"{url}/v1/chat/ok-1", json={"message": " "}),
                   "too long": httpx.post(f"{url}/v1/chat/ok-1", json={"message": "a" * 2001}),
                   "not json": httpx.post(f"{url}/v1/chat/ok-1", content=b"hello"),
                   "huge": httpx.post(f"{url}/v1/chat/ok-1", content=b"{" + b" " * 40_000 + b"}")}
        stats = httpx.get(f"{url}/v1/chat/stats").json()
    codes = {name: r.status_code for name, r in refused.items()}
    assert codes == {"id": 422, "long id": 422, "empty": 422, "too long": 422, "not json": 422, "huge": 413}, codes
    assert "conversation id 'a.b'" in refused["id"].text
    assert stats["turns"] == 0 and not (tmp_path / "chat.db").read_bytes().count(b"ok-1")    # nothing stored
