"""The data layer end to end, across modules: sources -> data -> clean -> label -> lineage, on a real folder."""
import pandas as pd
import yaml

import workbench.clean  # noqa: F401  (registers the cleaning transformations)
from workbench.data import DataStore
from workbench.label import Labels, adjudicate
from workbench.sources import ingest_source, synthetic_text


def test_card_yaml_has_the_seed_shape(tmp_path):
    store = DataStore(tmp_path)
    card = ingest_source(store, "synthetic-tabular", n=100, seed=0)
    text = (tmp_path / "datasets" / "synthetic-tabular" / "1.yaml").read_text()
    data = yaml.safe_load(text)
    assert list(data)[:5] == ["name", "version", "source", "rows", "schema"]
    assert data["name"] == "synthetic-tabular" and data["version"] == 1 and data["rows"] == 100
    assert {c["name"]: c["type"] for c in data["schema"]} == {
        "age": "float", "income": "float", "segment": "str", "clicks": "int", "label": "int"}
    assert card.content_hash == data["content_hash"]


def test_ingest_clean_label_adjudicate_and_trace_lineage(tmp_path):
    store = DataStore(tmp_path)
    messages = synthetic_text(120, seed=5)
    raw = store.ingest_table("tickets", messages, source="helpdesk export")
    pd.testing.assert_frame_equal(store.load("tickets"), messages)     # ingest -> load round-trips
    deduped = store.derive("tickets-dedup", "drop_near_duplicate_text", [raw.ref], {"column": "text", "threshold": 0.7})
    kept = store.load(deduped.name)
    planted_copies = {j for _, j in messages.attrs["near_duplicates"]}
    assert deduped.transformation.report["removed"] == len(planted_copies)
    assert set(kept["text"]).isdisjoint(messages.loc[sorted(planted_copies), "text"])

    labels = Labels(store)
    labels.create_task("topic", deduped.ref, classes=sorted(kept.topic.unique()))
    for item, topic in enumerate(kept.topic):
        labels.label("topic", item, "ana", topic)
        labels.label("topic", item, "ben", topic if item % 10 else "billing")  # ben errs on every tenth
    labeled = adjudicate(labels, "topic", "tickets-labeled", adjudicator="ana")
    assert (store.load(labeled.name)["label"] == kept.topic).all()

    chain = [step["ref"] for step in store.lineage(labeled.name)]
    assert chain == ["tickets-labeled@1", "tickets-dedup@1", "tickets@1"]
    assert store.lineage(labeled.name)[-1]["objects"] == [raw.objects["table.parquet"]]
    assert store.fsck() == {"corrupt": [], "missing": [], "bad_cards": [], "unreferenced": [], "staging": []}
