"""Parameter resolution: the paper's values, preset layering, casting of YAML 1.1 strings, clear errors."""

import pytest

from asgt_lib.core import config as C


def test_paper_preset_holds_table_1():
    m = C.resolve({"dataset": "mnist", "method": "asgt"}, preset="paper")
    assert (m.model, m.epochs, m.batch_size, m.lr, m.k, m.lam) == ("alexnet", 20, 128, 1e-2, 0.3, 1.0)
    c = C.resolve({"dataset": "cifar10", "method": "asgt"}, preset="paper")
    assert (c.model, c.epochs, c.batch_size, c.lr, c.k, c.lam) == ("resnet18", 100, 256, 1e-4, 0.1, 1.0)
    assert m.width == c.width == 1.0 and m.n_train_per_class is None and c.n_test_per_class is None
    assert C.preset_seeds("paper", "mnist") == [0, 1, 2, 3, 4]
    assert m.eval_eps[0] == 0 and min(e for e in m.eval_eps if e > 0) == 0.05 and max(m.eval_eps) == 0.4
    assert max(c.eval_eps) == pytest.approx(0.03)


def test_run_files_cover_every_figure():
    names = {(p.parent.name, p.stem) for p in C.run_files()}
    for ds in ("mnist", "cifar10"):
        assert {(ds, m) for m in ("st", "sgt", "at-fgsm", "sga", "asgt", "asgt-code")} <= names
        assert {(ds, m) for m in ("fgsm-rs", "pgd-at", "asgt-rs", "asgt-rs-lam0")} <= names  # the field
        rs, plain = C.resolve(f"params/{ds}/asgt-rs.yaml"), C.resolve(f"params/{ds}/asgt.yaml")
        changed = {k for k, v in rs.to_dict().items() if v != plain.to_dict()[k]}
        assert changed == {"method", "train_attack"}  # the one change: the inner attack
        assert C.resolve(f"params/{ds}/asgt-rs-lam0.yaml").lam == 0.0
    assert ("mnist", "sgt-k0.5") in names and ("cifar10", "sgt-k0.2") in names
    assert C.resolve("params/mnist/sgt-k0.5.yaml").k == 0.5
    assert C.resolve("params/cifar10/sgt-k0.2.yaml").k == 0.2


def test_presets_change_size_but_not_the_algorithm():
    paper = C.resolve("params/mnist/asgt.yaml", preset="paper")
    for preset in ("smoke", "quick"):
        small = C.resolve("params/mnist/asgt.yaml", preset=preset)
        for key in ("method", "k", "lam", "eps_train", "train_attack", "batch_size", "eval_attacks", "momentum"):
            assert getattr(small, key) == getattr(paper, key), (preset, key)
        assert small.epochs < paper.epochs and small.width < paper.width


def test_explicit_overrides_win_over_preset_and_file():
    cfg = C.resolve("params/mnist/sgt.yaml", preset="quick", overrides={"epochs": 1, "k": 0.4})
    assert cfg.epochs == 1 and cfg.k == 0.4


def test_yaml_11_strings_are_cast():
    cfg = C.resolve({"dataset": "cifar10", "method": "asgt", "lr": "1e-3", "eps_train": "8/255",
                     "eval_eps": "[0, 1e-2]", "saliency_abs": "yes", "epochs": "3"})
    assert cfg.lr == 1e-3 and cfg.eps_train == pytest.approx(8 / 255)
    assert cfg.eval_eps == (0.0, 0.01) and cfg.saliency_abs is True and cfg.epochs == 3


def test_hashes_follow_numbers_not_labels():
    a = C.resolve("params/mnist/asgt.yaml", preset="smoke")
    b = C.resolve("params/mnist/asgt.yaml", preset="smoke", overrides={"name": "renamed"})
    c = C.resolve("params/mnist/asgt.yaml", preset="smoke", overrides={"k": 0.31})
    d = C.resolve("params/mnist/asgt.yaml", preset="smoke", overrides={"eval_eps": [0.0, 0.2]})
    assert a.run_hash("mnist") == b.run_hash("mnist") != c.run_hash("mnist")
    assert a.run_hash("mnist") != a.run_hash("other-source")
    assert a.train_hash("mnist") == d.train_hash("mnist") and a.run_hash("mnist") != d.run_hash("mnist")
    assert a.train_hash("mnist") != c.train_hash("mnist")


def test_keys_follow_the_numerics_version_of_each_part_not_the_library_version(monkeypatch):
    import asgt_lib
    from asgt_lib.pipeline.experiment import derived_key

    cfg = C.resolve("params/mnist/asgt.yaml", preset="smoke")
    run, weights = cfg.run_hash("mnist"), cfg.train_hash("mnist")
    audit = derived_key("sanity", {"run": run})
    monkeypatch.setattr(asgt_lib, "__version__", "99.0")
    assert (cfg.run_hash("mnist"), cfg.train_hash("mnist"), derived_key("sanity", {"run": run})) == (run, weights, audit)
    monkeypatch.setitem(C.NUMERICS, "evaluate", C.NUMERICS["evaluate"] + 1)
    assert cfg.run_hash("mnist") != run and cfg.train_hash("mnist") == weights
    monkeypatch.setitem(C.NUMERICS, "train", C.NUMERICS["train"] + 1)
    assert cfg.train_hash("mnist") != weights
    assert derived_key("sanity", {"run": run}) == audit != derived_key("faithfulness", {"run": run})
    monkeypatch.setitem(C.NUMERICS, "sanity", C.NUMERICS["sanity"] + 1)
    assert derived_key("sanity", {"run": run}) != audit


def test_a_parameter_at_its_neutral_value_leaves_the_key_as_it_was_before_the_parameter_existed(monkeypatch):
    cfg = C.resolve("params/mnist/st.yaml", preset="smoke")
    now = cfg.run_hash("mnist"), cfg.train_hash("mnist")
    to_dict = C.RunConfig.to_dict
    monkeypatch.setattr(C.RunConfig, "to_dict",
                        lambda self: {k: v for k, v in to_dict(self).items() if k not in C.NEUTRAL_VALUES})
    assert (cfg.run_hash("mnist"), cfg.train_hash("mnist")) == now  # as computed by code without them
    monkeypatch.undo()
    for key, value in (("lr_schedule", "cyclic"), ("augment", "crop-flip")):
        other = C.resolve("params/mnist/st.yaml", preset="smoke", overrides={key: value})
        assert other.train_hash("mnist") != now[1]
    adversarial = C.resolve("params/mnist/at-fgsm.yaml", preset="smoke")
    warm = C.resolve("params/mnist/at-fgsm.yaml", preset="smoke", overrides={"eps_warmup": 0.25})
    assert warm.train_hash("mnist") != adversarial.train_hash("mnist")


@pytest.mark.parametrize("raw, message", [
    ({"k": 1.5}, r"k=1.5 is outside \(0, 1\)"),
    ({"k": 0}, r"k=0.0 is outside \(0, 1\)"),
    ({"lam": -1}, "lam=-1.0 is negative"),
    ({"eps_train": -0.1}, "eps_train=-0.1 is negative"),
    ({"eval_eps": [0.1, -0.2]}, "negative ε"),
    ({"method": "trades"}, "method 'trades' is unknown; allowed values: st, sgt, at-fgsm, sga, asgt, asgt-code, "
                           "fgsm-rs, pgd-at, asgt-rs"),
    ({"method": "pgd-at"}, "method pgd-at trains against pgd, but train_attack is 'fgsm': set train_attack: pgd"),
    ({"width": 1e9}, "width=1e\\+09 is larger than 8, the most this project allocates"),
    ({"method": "at-fgsm", "eps_warmup": 1.0}, r"eps_warmup=1.0 is outside \[0, 1\)"),
    ({"method": "st", "eps_warmup": 0.2},
     "eps_warmup=0.2 is set, but method st crafts no adversarial examples: remove it"),
    ({"eval_batch_size": 10 ** 7}, "eval_batch_size=1e\\+07 is larger than 65536"),
    ({"eval_eps": [0.1, float("nan")]}, "key 'eval_eps' has value .*not a finite number"),
    ({"eps_train": "inf"}, "key 'eps_train' has value 'inf'.*not a finite number"),
    ({"saliency_space": "logits"}, "saliency_space 'logits' is unknown; allowed values: pixels, normalized"),
    ({"saliency_of": "softmax"}, "saliency_of 'softmax' is unknown; allowed values: logit, log_softmax"),
    ({"dataset": "imagenet"}, "dataset 'imagenet' is unknown; allowed values: mnist, cifar10"),
    ({"epochs": "many"}, "key 'epochs' has value 'many', which is not a valid integer"),
    ({"epochs": 2.5}, "key 'epochs' has value 2.5, which is not a valid integer"),
    ({"lr": [1, 2]}, "key 'lr'"),
    ({"learning_rate": 0.1}, "key 'learning_rate' is unknown; allowed keys: dataset, method"),
    ({"attack_step": "tiny"}, "attack_step entry 'tiny' is unknown; allowed values: scaled, fixed"),
    ({"attack_step": ["fixed", "fixed"]}, "must name each convention once"),
])
def test_bad_parameters_name_key_and_fix(raw, message):
    spec = {"dataset": "mnist", "method": "asgt", **raw}
    with pytest.raises(C.ConfigError, match=message):
        C.resolve(spec)


def test_unknown_preset_is_named():
    with pytest.raises(C.ConfigError, match="preset 'huge' is unknown; allowed values: smoke, quick, reference, "
                                            "reference-fp32, paper-cpu, paper"):
        C.resolve("params/mnist/st.yaml", preset="huge")


def test_bad_yaml_file_names_the_file_and_key(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("dataset: mnist\nmethod: sgt\nkk: 0.3\n")
    with pytest.raises(C.ConfigError, match=rf"{bad}: key 'kk' is unknown"):
        C.resolve(bad)
    broken = tmp_path / "broken.yaml"
    broken.write_text("dataset: [mnist\n")
    with pytest.raises(C.ConfigError, match=rf"{broken}: not valid YAML"):
        C.resolve(broken)
    with pytest.raises(C.ConfigError, match="no such parameter file"):
        C.resolve(tmp_path / "missing.yaml")
    missing_method = tmp_path / "nomethod.yaml"
    missing_method.write_text("dataset: mnist\n")
    with pytest.raises(C.ConfigError, match="key 'method' is missing"):
        C.resolve(missing_method)


def test_preset_may_not_change_the_algorithm(tmp_path):
    (tmp_path / "datasets.yaml").write_text((C.default_params_dir() / "datasets.yaml").read_text())
    (tmp_path / "presets.yaml").write_text("fast:\n  mnist:\n    k: 0.9\n")
    with pytest.raises(C.ConfigError, match="key 'k' is unknown; allowed keys: epochs"):
        C.resolve({"dataset": "mnist", "method": "sgt"}, preset="fast", params_dir=tmp_path)


def test_set_assignments_are_yaml_typed():
    assert C.parse_assignments(["k=0.5", "eval_eps=[0, 0.1]", "name=x"]) == {"k": 0.5, "eval_eps": [0, 0.1],
                                                                            "name": "x"}
    with pytest.raises(C.ConfigError, match="not of the form key=value"):
        C.parse_assignments(["k0.5"])


def test_a_bad_precision_is_named_whichever_layer_sets_it():
    with pytest.raises(C.ConfigError, match="overrides: precision 'fp16' is unknown; allowed values: fp32, bf16"):
        C.resolve({"dataset": "mnist", "method": "st"}, preset="paper", overrides={"precision": "fp16"})


def test_an_error_names_the_layer_that_set_the_value(tmp_path):
    """A bad value given by --set is reported as coming from --set, not from the run file it overrides; one
    from the run file names the run file."""
    with pytest.raises(C.ConfigError, match=r"^--set: k=2.0 is outside"):
        C.resolve("params/mnist/sgt.yaml", preset="smoke", overrides={"k": 2}, overrides_source="--set")
    bad = tmp_path / "bad.yaml"
    bad.write_text("dataset: mnist\nmethod: sgt\nk: 2\n")
    with pytest.raises(C.ConfigError, match=rf"^{bad}: k=2.0 is outside"):
        C.resolve(bad, preset="smoke", overrides={"lam": 0.5}, overrides_source="--set")


def test_attack_step_chooses_which_numbers_are_computed_not_their_key():
    """A run scored under one convention is the same run once the other is added: neither hash moves, and the
    paper's files ask for both conventions (issue 35)."""
    both = C.resolve(C.ROOT / "params" / "mnist" / "asgt.yaml", "reference", 0)
    assert both.attack_step == ("scaled", "fixed")
    for step in ("scaled", "fixed", "fixed,scaled"):
        one = C.resolve(C.ROOT / "params" / "mnist" / "asgt.yaml", "reference", 0, {"attack_step": step})
        assert one.run_hash("mnist") == both.run_hash("mnist") and one.train_hash("mnist") == both.train_hash("mnist")
    assert C.RunConfig(dataset="mnist", method="st").attack_step == ("scaled",)  # a config.json of before


def test_a_preset_may_plan_some_run_files_only_and_names_are_checked(tmp_path):
    """``runs:`` (issue 36): paper-cpu plans the six run files the claims read and no CIFAR-10 run; a name that is
    no run file is refused, naming the file and the fix."""
    assert C.preset_runs("paper-cpu", "mnist") == ["st", "sgt", "sgt-k0.5", "at-fgsm", "sga", "asgt"]
    assert C.preset_runs("paper-cpu", "cifar10") == [] and C.preset_runs("reference", "mnist") is None
    params = tmp_path / "params"
    (params / "mnist").mkdir(parents=True)
    (params / "mnist" / "st.yaml").write_text("dataset: mnist\nmethod: st\n")
    (params / "presets.yaml").write_text("smoke:\n  mnist:\n    runs: [st, asgd]\n")
    with pytest.raises(C.ConfigError, match=r"\[smoke.mnist\]: runs names asgd, which is no run file"):
        C.preset_runs("smoke", "mnist", params)
    (params / "presets.yaml").write_text("smoke:\n  mnist:\n    runs: st\n")
    with pytest.raises(C.ConfigError, match="runs must list run-file names"):
        C.preset_runs("smoke", "mnist", params)
