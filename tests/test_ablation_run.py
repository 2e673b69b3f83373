"""Running a study without Ray: the producer hands out unfinished runs, each is persisted as it ends; resume runs
only the missing ones; statistics and reports from hand-made runs."""
import copy
import json
import math

import pytest
import yaml

from vitnas.errors import UserError
from vitnas.nas.ablation.plan import identity, seed_datasets
from vitnas.nas.ablation.report import html_sections, markdown, results, write_html
from vitnas.nas.ablation.run import AblationProducer, prepare
from vitnas.nas.ablation.store import AblationStore, RunRecord
from vitnas.nas.ablation.study import profile_with_seeds, study_from_dict
from vitnas.nas.executor import TrialResult
from vitnas.nas.executor.worker import run_request
from vitnas.nas.outcome import Outcome
from vitnas.search_spaces.config import ArchConfig

DATA = "synthetic:n=192,size=8,chans=1,classes=3"
STUDY = {
    "name": "tiny", "claim": "Conv beats identity.", "source": "hand-made",
    "published": {"data": "d", "scale": "s", "values": {"conv": 0.9, "identity": 0.8}},
    "base": {"stem": {"kind": "patch", "patch_size": 2},
             "stages": [{"depth": 1, "width": 8, "mixer": {"kind": "conv", "kernel_size": 3}}]},
    "reference": "conv",
    "arms": {"conv": {}, "twin": {"train.lr": 0.002}, "identity": {"stages[*].mixer": "identity"}},
    "expect": ["accuracy: identity < conv"],
    "metrics": ["accuracy", "params"],
    "profiles": {"quick": {"data": DATA, "budget": {"epochs": 1}}, "full": {"data": DATA, "budget": {"epochs": 2}}},
}


class Recorder:
    """A listener that remembers what it was told."""

    def __init__(self):
        self.started, self.finished, self.interrupted = [], [], []

    def run_started(self, run):
        self.started.append(run.key)

    def run_progress(self, run, epoch, val_accuracy):
        pass

    def run_finished(self, record):
        self.finished.append((record.arm, record.seed))

    def runs_interrupted(self, runs):
        self.interrupted += [run.key for run in runs]


@pytest.fixture(scope="module")
def planned():
    study = study_from_dict(copy.deepcopy(STUDY))
    profile = study.profile("quick")
    datasets, runs = prepare(study, profile)
    return study, profile, datasets, runs


def drive(producer, datasets, limit=None):
    """The executor's loop without Ray: run requests one after another in this process."""
    done = 0
    while (limit is None or done < limit) and (request := producer.next_request()) is not None:
        producer.on_finished(request.key, run_request(request, datasets[request.data]))
        done += 1


def new_store(tmp_path, study, profile):
    return AblationStore.create(tmp_path / "a", study, profile, identity(study, profile))


def test_every_run_is_persisted_and_seeds_pair_across_arms(tmp_path, planned):
    study, profile, datasets, runs = planned
    store = new_store(tmp_path, study, profile)
    listener = Recorder()
    drive(AblationProducer(store, runs, study, profile, listener), datasets)
    assert listener.started == [f"{arm}/seed-{s}" for arm in ("conv", "twin", "identity") for s in (0, 1, 2)]
    finished = store.finished()
    assert len(finished) == 9 and all(r.outcome is Outcome.OK for r in finished.values())
    folder = store.run_dir("identity", 1)
    assert ArchConfig.from_yaml(folder / "config.yaml").stages[0].mixer.kind == "identity"
    saved = json.loads((folder / "metrics.json").read_text())
    assert saved["train"] == {"epochs": 1, "seed": 1} and saved["outcome"] == "ok"
    assert "epoch 1" in (folder / "log.txt").read_text()
    # `twin` is `conv` with the default lr written out: the same data order, split and initial weights per seed
    for seed in (0, 1, 2):
        assert finished[("twin", seed)].metrics["accuracy"] == finished[("conv", seed)].metrics["accuracy"]
        assert finished[("twin", seed)].metrics["val_accuracy"] == finished[("conv", seed)].metrics["val_accuracy"]
    losses = {json.loads((store.run_dir("conv", s) / "metrics.json").read_text())["history"][0]["train_loss"]
              for s in (0, 1, 2)}
    assert len(losses) == 3  # different seeds are different runs


def test_the_seeds_own_validation_split(planned):
    _, profile, datasets, _ = planned
    assert set(datasets) == {"seed-0", "seed-1", "seed-2"}
    assert not datasets["seed-0"].y_val.equal(datasets["seed-1"].y_val) or \
        not datasets["seed-0"].x_val.equal(datasets["seed-1"].x_val)


def test_a_training_subset_is_stratified_and_seeded():
    profile = study_from_dict({**copy.deepcopy(STUDY), "train_images": 60}).profile("quick")
    datasets = seed_datasets(profile)
    counts = datasets["seed-0"].y_train.bincount().tolist()
    assert sum(counts) == 60 and max(counts) - min(counts) <= 2
    assert not datasets["seed-0"].x_train.equal(datasets["seed-1"].x_train)


def test_resume_runs_only_what_is_missing_and_keeps_finished_files(tmp_path, planned):
    study, profile, datasets, runs = planned
    store = new_store(tmp_path, study, profile)
    drive(AblationProducer(store, runs, study, profile, Recorder()), datasets, limit=4)
    before = {key: (store.run_dir(*key) / "metrics.json").read_bytes() for key in store.finished()}
    assert len(before) == 4
    # a run in flight when the driver died has a folder but no metrics.json: it runs again
    (store.run_dir("twin", 1)).mkdir(parents=True)
    (store.run_dir("twin", 1) / "config.yaml").write_text("half written")
    reopened = AblationStore.open(store.directory)
    reopened.resume(study, profile, identity(study, profile))
    listener = Recorder()
    drive(AblationProducer(reopened, runs, study, profile, listener), datasets)
    assert listener.started == ["twin/seed-1", "twin/seed-2", "identity/seed-0", "identity/seed-1",
                                "identity/seed-2"]
    assert {key: (store.run_dir(*key) / "metrics.json").read_bytes() for key in before} == before
    assert len(reopened.finished()) == 9


def test_interrupted_runs_leave_nothing_and_failed_runs_are_kept(tmp_path, planned):
    study, profile, _, runs = planned
    store = new_store(tmp_path, study, profile)
    listener = Recorder()
    producer = AblationProducer(store, runs, study, profile, listener)
    first, second = producer.next_request(), producer.next_request()
    producer.on_finished(first.key, TrialResult(Outcome.FAILED, error="RuntimeError: boom", log="traceback"))
    producer.on_interrupted([second.key])
    assert listener.interrupted == [second.key]
    assert not (store.run_dir("conv", 1) / "metrics.json").exists()
    (failed,) = store.finished().values()
    assert (failed.arm, failed.seed, failed.outcome, failed.error) == ("conv", 0, Outcome.FAILED, "RuntimeError: boom")
    again = AblationProducer(store, runs, study, profile, Recorder())
    assert again.next_request().key == "conv/seed-1"  # the failed run is a result: not repeated


def test_a_changed_study_refuses_to_resume_and_seeds_may_only_grow(tmp_path, planned):
    study, profile, _, _ = planned
    store = new_store(tmp_path, study, profile)
    with pytest.raises(UserError, match="already holds an ablation: add --resume"):
        new_store(tmp_path, study, profile)
    changed = study_from_dict({**copy.deepcopy(STUDY), "arms": {**STUDY["arms"], "twin": {"train.lr": 0.003}}})
    with pytest.raises(UserError, match="--resume: the study's arms changed"):
        store.resume(changed, changed.profile("quick"), identity(changed, changed.profile("quick")))
    longer = profile_with_seeds(profile, 5)
    store.resume(study, longer, identity(study, longer))
    assert AblationStore.open(store.directory).profile(study).seeds == (0, 1, 2, 3, 4)
    fewer = profile_with_seeds(profile, [0, 1, 7])
    with pytest.raises(UserError, match=r"seeds \[2, 3, 4\] .*--seeds may only grow"):
        store.resume(study, fewer, identity(study, fewer))


def test_an_arm_that_cannot_be_built_fails_before_any_store_exists(tmp_path):
    bad = study_from_dict({**copy.deepcopy(STUDY), "arms": {**STUDY["arms"],
                                                            "identity": {"stem.patch_size": 3}}})
    with pytest.raises(UserError, match=r"arms.identity \(profile quick\): stem.patch_size: got 3; must divide"):
        prepare(bad, bad.profile("quick"))


# ---- statistics and reports of hand-made runs

def record(arm, seed, accuracy, outcome=Outcome.OK, error=None):
    return RunRecord(arm, seed, outcome, {"accuracy": accuracy, "params": 100 if arm == "conv" else 90}, error)


@pytest.fixture
def report():
    study = study_from_dict(copy.deepcopy(STUDY))
    runs = [record("conv", 0, 0.80), record("conv", 1, 0.85), record("conv", 2, 0.83),
            record("identity", 0, 0.75), record("identity", 1, 0.78), record("identity", 2, 0.80),
            record("twin", 0, 0.5), record("twin", 1, None, Outcome.FAILED, "out of memory: CPU"),
            record("twin", 2, None, Outcome.DIVERGED, "diverged: the training loss became NaN/inf in epoch 1")]
    return results(study, study.profile("quick"), {(r.arm, r.seed): r for r in runs})


def test_results_of_hand_made_runs(report):
    (comparison,) = report["comparisons"]
    t = 0.05 / (0.02 / math.sqrt(3))  # identity - conv: -0.05, -0.07, -0.03
    assert comparison["mean_difference"] == pytest.approx(-0.05)
    assert comparison["p"] == pytest.approx(1 - t / math.sqrt(2 + t * t))  # t with 2 df, closed form
    assert comparison["p_holm"] == comparison["p"]  # one comparison
    assert comparison["ci95"][1] < 0 and comparison["verdict"] == "supported"
    assert comparison["published"] == [0.8, 0.9]
    assert report["verdict"] == "supported"
    arms = {arm["name"]: arm for arm in report["arms"]}
    assert arms["conv"]["reference"] and arms["conv"]["published"] == 0.9
    assert arms["conv"]["metrics"]["accuracy"]["mean"] == pytest.approx(2.48 / 3)
    assert arms["twin"]["metrics"]["accuracy"]["n"] == 1 and arms["twin"]["metrics"]["accuracy"]["ci95"] is None
    assert arms["twin"]["runs"] == {"0": "ok", "1": "failed", "2": "diverged"}
    assert arms["conv"]["metrics"]["params"]["sd"] == 0.0
    assert report["counts"] == {"planned": 9, "finished": 9, "ok": 7, "failed": 2}
    assert [(f["arm"], f["seed"], f["error"]) for f in report["failures"]] == [
        ("twin", 1, "out of memory: CPU"), ("twin", 2, "diverged: the training loss became NaN/inf in epoch 1")]
    json.dumps(report, allow_nan=False)  # strict JSON


def test_the_papers_figures_stand_only_beside_the_metric_they_measure():
    two = {**copy.deepcopy(STUDY), "expect": ["accuracy: identity < conv", "params: identity < conv"]}
    runs = [record(arm, seed, 0.8) for arm in ("conv", "identity", "twin") for seed in range(3)]
    for published, shown in (({}, [[0.8, 0.9], [None, None]]), ({"of": "params"}, [[None, None], [0.8, 0.9]])):
        study = study_from_dict({**two, "published": {**two["published"], **published}})
        found = results(study, study.profile("quick"), {(r.arm, r.seed): r for r in runs})
        assert [comparison["published"] for comparison in found["comparisons"]] == shown


def test_markdown_and_html_show_the_verdict_the_paper_and_every_seed(report):
    text = markdown(report)
    assert text.startswith("# tiny (profile quick): supported")
    assert "| accuracy: identity < conv | 0.8 vs 0.9 | -0.05 [" in text
    assert "| twin | accuracy | 0.5 | failed | diverged |" in text
    assert "## Failed runs" in text and "out of memory: CPU" in text


def test_the_html_page_draws_every_metric_and_the_papers_figures_beside_the_verdicts(tmp_path):
    hostile = {**copy.deepcopy(STUDY), "claim": "Conv <b>beats</b> identity & co",
               "source": "<script>alert(1)</script>"}
    study = study_from_dict(hostile)
    runs = [record("conv", 0, 0.80), record("conv", 1, 0.85), record("conv", 2, 0.83),
            record("identity", 0, 0.75), record("identity", 1, 0.78), record("identity", 2, 0.80),
            record("twin", 0, 0.5), record("twin", 1, None, Outcome.FAILED, "a <tag>")]  # twin's seed 2 not run
    report = results(study, study.profile("quick"), {(r.arm, r.seed): r for r in runs})
    pngs = write_html(report, tmp_path / "r.html", interactive=False)
    assert sorted(p.name for p in pngs) == ["r-accuracy.png", "r-paper.png", "r-params.png"]
    assert all(p.read_bytes().startswith(b"\x89PNG") for p in pngs)
    page = (tmp_path / "r.html").read_text()
    assert "<script" not in page and "<b>" not in page and "<tag>" not in page  # a static page: study text escaped
    assert "Conv &lt;b&gt;beats&lt;/b&gt; identity &amp; co" in page and "a &lt;tag&gt;" in page
    assert "<h1>tiny (profile quick): supported</h1>" in page
    assert "<td>accuracy: identity &lt; conv</td><td>0.8 vs 0.9</td>" in page and "<td>supported</td>" in page
    assert [page.count(f'data-chart="{slug}"') for slug in ("accuracy", "paper", "params")] == [1, 1, 1]
    assert page.index('data-chart="accuracy"') < page.index('data-chart="paper"') < page.index('data-chart="params"')

    (arms,) = [s for s in html_sections(report, interactive=True) if s.title == "Arms"]
    traces = {chart.slug: {trace.name: trace for trace in chart.figure.data} for chart in arms.charts}
    accuracy = traces["accuracy"]
    assert list(accuracy["mean"].x) == ["conv", "twin", "identity"]
    assert list(accuracy["mean"].y) == pytest.approx([2.48 / 3, 0.5, 2.33 / 3])
    assert accuracy["mean"].error_y.array[1] is None  # one seed: no interval
    assert list(accuracy["seed"].y) == pytest.approx([0.80, 0.85, 0.83, 0.5, 0.75, 0.78, 0.80])
    assert "paper" not in accuracy and "paper" not in traces["params"]  # the paper's own axis, not ours
    assert list(traces["params"]["seed"].y) == [100, 100, 100, 90, 90, 90, 90]
    assert list(traces["paper"]["paper"].x) == ["conv", "identity"] and list(traces["paper"]["paper"].y) == [0.9, 0.8]


def test_missing_runs_are_counted_not_invented():
    study = study_from_dict(copy.deepcopy(STUDY))
    report = results(study, study.profile("quick"), {("conv", 0): record("conv", 0, 0.8)})
    assert report["counts"]["planned"] == 9 and report["counts"]["finished"] == 1
    assert report["comparisons"][0]["n"] == 0 and report["comparisons"][0]["verdict"] == "inconclusive"
    assert "missing" in markdown(report)


def test_the_store_keeps_the_study_so_a_report_needs_nothing_else(tmp_path):
    study = study_from_dict(copy.deepcopy(STUDY))
    store = new_store(tmp_path, study, study.profile("quick"))
    reread = AblationStore.open(store.directory).study()
    assert reread.arms.keys() == study.arms.keys() and reread.expect == study.expect
    assert yaml.safe_load(yaml.safe_dump(reread.raw)) == STUDY
