"""The corpus: one small generator per repository shape DVC accepts (issue 10's list, plus cross-pipeline).

Commands are fast and deterministic (sh, cat, echo, python3 -c), so DVC's md5s, dvc.lock and every output
are the same whoever runs them. Each shape names the variations (edits + run options) it is checked with.
"""

from __future__ import annotations

from typing import Any

from tests.conformance.repos import Shape, Variation

METRICS_CMD = (
    "python3 -c \"import json; json.dump({'lines': len(open('model.txt').readlines())}, open('metrics.json', 'w'))\""
)


def plain_chain() -> Shape:
    return Shape(
        name="plain-chain",
        files={
            "data.txt": "3\n1\n2\n",
            "params.yaml": {"train": {"lr": 0.1, "epochs": 2}},
            "dvc.yaml": {
                "stages": {
                    "prepare": {"cmd": "sort data.txt > prepared.txt", "deps": ["data.txt"], "outs": ["prepared.txt"]},
                    "train": {
                        "cmd": "grep lr params.yaml > model.txt && cat prepared.txt >> model.txt",
                        "deps": ["prepared.txt"],
                        "params": ["train.lr"],
                        "outs": ["model.txt"],
                    },
                    "evaluate": {
                        "cmd": METRICS_CMD,
                        "deps": ["model.txt"],
                        "metrics": [{"metrics.json": {"cache": False}}],
                    },
                }
            },
        },
        variations=(
            Variation("target-with-upstream", {"targets": ["train"]}, edits={"data.txt": "4\n3\n1\n2\n"}),
            Variation(
                "downstream",
                {"targets": ["train"], "downstream": True},
                edits={"params.yaml": "train:\n  lr: 0.2\n  epochs: 2\n"},
            ),
            Variation("untracked-param-edit", {}, edits={"params.yaml": "train:\n  lr: 0.2\n  epochs: 5\n"}),
            Variation("force-target", {"targets": ["evaluate"], "force": True}),
            Variation(
                "single-item-force",
                {"targets": ["train"], "singleItem": True, "force": True},
                edits={"data.txt": "9\n"},
            ),
            Variation("single-item", {"targets": ["prepare"], "singleItem": True}),
        ),
    )


def vars_inline() -> Shape:
    return Shape(
        name="vars-inline",
        files={
            "dvc.yaml": {
                "vars": [{"greeting": "hello", "folder": "greetings", "times": 2}],
                "stages": {
                    "greet": {
                        "cmd": "mkdir -p ${folder} && echo ${greeting} ${times} > ${folder}/hello.txt",
                        "outs": ["${folder}/hello.txt"],
                    },
                    "shout": {
                        "cmd": "tr a-z A-Z < ${folder}/hello.txt > loud.txt",
                        "deps": ["${folder}/hello.txt"],
                        "outs": ["loud.txt"],
                    },
                },
            }
        },
        variations=(Variation("force-last", {"targets": ["shout"], "force": True, "singleItem": True}),),
    )


def vars_from_files() -> Shape:
    return Shape(
        name="vars-from-files",
        files={
            "config.yaml": {"model": {"name": "tree", "depth": 3}},
            "settings.json": '{"report": {"title": "weekly"}, "unused": 1}\n',
            "dvc.yaml": {
                "vars": ["config.yaml", "settings.json:report"],
                "stages": {
                    "fit": {
                        "cmd": "echo ${model.name} ${model.depth} > model-${model.name}.txt",
                        "outs": ["model-${model.name}.txt"],
                    },
                    "report": {
                        "cmd": "cat model-${model.name}.txt > ${report.title}.txt",
                        "deps": ["model-${model.name}.txt"],
                        "outs": ["${report.title}.txt"],
                    },
                },
            },
        },
    )


def foreach_list() -> Shape:
    return Shape(
        name="foreach-list",
        files={
            "dvc.yaml": {
                "stages": {
                    "make": {
                        "foreach": ["alpha", "beta", "gamma"],
                        "do": {"cmd": "echo ${item} > out-${item}.txt", "outs": ["out-${item}.txt"]},
                    },
                    "combine": {
                        "cmd": "cat out-alpha.txt out-beta.txt out-gamma.txt > all.txt",
                        "deps": ["out-alpha.txt", "out-beta.txt", "out-gamma.txt"],
                        "outs": ["all.txt"],
                    },
                }
            }
        },
        variations=(
            Variation("group-target-force", {"targets": ["make"], "force": True}),
            Variation("member-target-force", {"targets": ["make@beta"], "force": True}),
            Variation("group-target-downstream", {"targets": ["make"], "downstream": True}),
        ),
    )


def foreach_list_of_dicts() -> Shape:
    return Shape(
        name="foreach-dicts",
        files={
            "dvc.yaml": {
                "stages": {
                    "train": {
                        "foreach": [{"name": "small", "size": 1}, {"name": "big", "size": 3}],
                        "do": {
                            "cmd": "python3 -c \"print('x' * ${item.size})\" > model-${item.name}.txt",
                            "outs": ["model-${item.name}.txt"],
                        },
                    }
                }
            }
        },
        variations=(Variation("group-target-force", {"targets": ["train"], "force": True}),),
    )


def foreach_dict() -> Shape:
    return Shape(
        name="foreach-dict",
        files={
            "rates.txt": "base\n",
            "dvc.yaml": {
                "stages": {
                    "report": {
                        "foreach": {"us": {"rate": 1}, "eu": {"rate": 2}},
                        "do": {
                            "cmd": "cat rates.txt > report-${key}.txt && echo ${key} ${item.rate} >> report-${key}.txt",
                            "deps": ["rates.txt"],
                            "outs": ["report-${key}.txt"],
                        },
                    }
                }
            },
        },
        variations=(Variation("member-target-after-edit", {"targets": ["report@eu"]}, edits={"rates.txt": "new\n"}),),
    )


def matrix() -> Shape:
    return Shape(
        name="matrix",
        files={
            "dvc.yaml": {
                "stages": {
                    "eval": {
                        "matrix": {"model": ["tree", "forest"], "split": [1, 2]},
                        "cmd": "echo ${item.model} ${item.split} > eval-${item.model}-${item.split}.txt",
                        "outs": ["eval-${item.model}-${item.split}.txt"],
                    },
                    "summary": {
                        "cmd": "cat eval-*.txt > summary.txt",
                        "deps": ["eval-tree-1.txt", "eval-tree-2.txt", "eval-forest-1.txt", "eval-forest-2.txt"],
                        "outs": ["summary.txt"],
                    },
                }
            }
        },
        variations=(
            Variation("group-target-force", {"targets": ["eval"], "force": True}),
            Variation("member-single-item-force", {"targets": ["eval@forest-2"], "force": True, "singleItem": True}),
        ),
    )


def interpolation_everywhere() -> Shape:
    return Shape(
        name="interpolation",
        files={
            "inputs/small.txt": "s\n",
            "inputs/big.txt": "b\n",
            "params.yaml": {"small": {"lr": 0.1}, "big": {"lr": 0.2}},
            "dvc.yaml": {
                "vars": [{"data": "inputs"}],
                "stages": {
                    "fit": {
                        "foreach": ["small", "big"],
                        "do": {
                            "cmd": "cat ${data}/${item}.txt > fit-${item}.txt && echo ${item} >> fit-${item}.txt",
                            "deps": ["${data}/${item}.txt"],
                            "params": ["${item}.lr"],
                            "outs": ["fit-${item}.txt"],
                        },
                    }
                },
            },
        },
        variations=(
            Variation("param-of-one-member", {}, edits={"params.yaml": "small:\n  lr: 0.1\nbig:\n  lr: 0.3\n"}),
            Variation("dep-of-one-member", {}, edits={"inputs/small.txt": "S\n"}),
        ),
    )


def cmd_list() -> Shape:
    return Shape(
        name="cmd-list",
        files={
            "dvc.yaml": {
                "stages": {
                    "build": {"cmd": ["echo one > built.txt", "echo two >> built.txt"], "outs": ["built.txt"]},
                    "check": {
                        "cmd": ["cat built.txt > checked.txt", "wc -l < built.txt >> checked.txt"],
                        "deps": ["built.txt"],
                        "outs": ["checked.txt"],
                    },
                }
            }
        },
    )


def stage_wdir() -> Shape:
    return Shape(
        name="stage-wdir",
        files={
            "work/input.txt": "inside\n",
            "dvc.yaml": {
                "stages": {
                    "inside": {
                        "wdir": "work",
                        "cmd": "cat input.txt > output.txt",
                        "deps": ["input.txt"],
                        "outs": ["output.txt"],
                    },
                    "after": {
                        "cmd": "cat work/output.txt > final.txt",
                        "deps": ["work/output.txt"],
                        "outs": ["final.txt"],
                    },
                }
            },
        },
        variations=(Variation("edit-inside-wdir", {}, edits={"work/input.txt": "changed\n"}),),
    )


def subfolder_pipeline() -> Shape:
    return Shape(
        name="subfolder",
        main="ml/dvc.yaml",
        files={
            "ml/raw.txt": "b\na\n",
            "ml/params.yaml": {"clean": {"lower": True}},
            "ml/dvc.yaml": {
                "stages": {
                    "clean": {
                        "cmd": "sort raw.txt > clean.txt",
                        "deps": ["raw.txt"],
                        "params": ["clean.lower"],
                        "outs": ["clean.txt"],
                    },
                    "count": {"cmd": "wc -l < clean.txt > count.txt", "deps": ["clean.txt"], "outs": ["count.txt"]},
                }
            },
        },
        variations=(
            Variation("param-edit", {}, edits={"ml/params.yaml": "clean:\n  lower: false\n"}),
            Variation("target", {"targets": ["count"], "force": True}),
        ),
    )


def params_json() -> Shape:
    return Shape(
        name="params-json",
        files={
            "params.json": '{"lr": 0.1, "other": 1}\n',
            "dvc.yaml": {
                "stages": {
                    "train": {
                        "cmd": "cat params.json > model.txt",
                        "params": [{"params.json": ["lr"]}],
                        "outs": ["model.txt"],
                    }
                }
            },
        },
        variations=(
            Variation("untracked-key", {}, edits={"params.json": '{"lr": 0.1, "other": 2}\n'}),
            Variation("tracked-key", {}, edits={"params.json": '{"lr": 0.5, "other": 2}\n'}),
        ),
    )


def params_toml() -> Shape:
    return Shape(
        name="params-toml",
        files={
            "params.toml": "[train]\nlr = 0.1\nseed = 1\n",
            "dvc.yaml": {
                "stages": {
                    "train": {
                        "cmd": "cat params.toml > model.txt",
                        "params": [{"params.toml": ["train.lr"]}],
                        "outs": ["model.txt"],
                    }
                }
            },
        },
        variations=(Variation("tracked-key", {}, edits={"params.toml": "[train]\nlr = 0.2\nseed = 1\n"}),),
    )


def params_python() -> Shape:
    return Shape(
        name="params-python",
        files={
            "params.py": "LR = 0.1\nEPOCHS = 2\n",
            "dvc.yaml": {
                "stages": {
                    "train": {
                        "cmd": "grep LR params.py > model.txt",
                        "params": [{"params.py": ["LR"]}],
                        "outs": ["model.txt"],
                    }
                }
            },
        },
        variations=(
            Variation("untracked-key", {}, edits={"params.py": "LR = 0.1\nEPOCHS = 3\n"}),
            Variation("tracked-key", {}, edits={"params.py": "LR = 0.3\nEPOCHS = 3\n"}),
        ),
    )


def whole_file_params() -> Shape:
    return Shape(
        name="whole-file-params",
        files={
            "config.yaml": {"a": 1, "b": {"c": 2}},
            "dvc.yaml": {
                "stages": {
                    "use": {
                        "cmd": "cat config.yaml > used.txt",
                        "params": [{"config.yaml": None}],
                        "outs": ["used.txt"],
                    }
                }
            },
        },
        variations=(Variation("any-key", {}, edits={"config.yaml": "a: 1\nb:\n  c: 3\n"}),),
    )


def dvc_tracked_dep() -> Shape:
    return Shape(
        name="dvc-tracked-dep",
        tracked=("data.csv",),
        files={
            "data.csv": "x,y\n1,2\n",
            "dvc.yaml": {
                "stages": {
                    "prepare": {"cmd": "tail -n +2 data.csv > rows.csv", "deps": ["data.csv"], "outs": ["rows.csv"]}
                }
            },
        },
        variations=(Variation("tracked-data-changed", {}, edits={"data.csv": "x,y\n1,2\n3,4\n"}),),
    )


def persist() -> Shape:
    return Shape(
        name="persist",
        files={
            "input.txt": "one\n",
            "dvc.yaml": {
                "stages": {
                    "accumulate": {
                        "cmd": "cat input.txt >> history.txt",
                        "deps": ["input.txt"],
                        "outs": [{"history.txt": {"persist": True}}],
                    }
                }
            },
        },
        variations=(
            Variation("dep-edit", {}, edits={"input.txt": "two\n"}),
            Variation("force", {"force": True}),
        ),
    )


def cache_false() -> Shape:
    return Shape(
        name="cache-false",
        files={
            "input.txt": "data\n",
            "dvc.yaml": {
                "stages": {
                    "report": {
                        "cmd": "cat input.txt > report.txt && echo '{\"n\": 1}' > numbers.json",
                        "deps": ["input.txt"],
                        "outs": [{"report.txt": {"cache": False}}],
                        "metrics": [{"numbers.json": {"cache": False}}],
                    },
                    "publish": {
                        "cmd": "cat report.txt > published.txt",
                        "deps": ["report.txt"],
                        "outs": ["published.txt"],
                    },
                }
            },
        },
        variations=(Variation("dep-edit", {}, edits={"input.txt": "more\n"}),),
    )


def frozen() -> Shape:
    return Shape(
        name="frozen",
        files={
            "source.txt": "seed\n",
            "dvc.yaml": {
                "stages": {
                    "fetch": {
                        "cmd": "cat source.txt > fetched.txt",
                        "deps": ["source.txt"],
                        "outs": ["fetched.txt"],
                        "frozen": True,
                    },
                    "use": {"cmd": "cat fetched.txt > used.txt", "deps": ["fetched.txt"], "outs": ["used.txt"]},
                }
            },
        },
        variations=(
            Variation("frozen-dep-edit", {}, edits={"source.txt": "other\n"}),
            Variation("force", {"force": True}),
        ),
    )


def frozen_with_outputs() -> Shape:
    """The usual frozen stage: run once, then frozen; its output (cache: false) and dvc.lock are in git."""

    def pipeline(frozen: bool) -> dict[str, Any]:
        return {
            "stages": {
                "fetch": {
                    "cmd": "cat source.txt > fetched.txt",
                    "deps": ["source.txt"],
                    "outs": [{"fetched.txt": {"cache": False}}],
                    "frozen": frozen,
                },
                "use": {
                    "cmd": "cat fetched.txt > used.txt",
                    "deps": ["fetched.txt"],
                    "outs": [{"used.txt": {"cache": False}}],
                },
            }
        }

    return Shape(
        name="frozen-with-outputs",
        reproduced=True,
        files={"source.txt": "seed\n", "dvc.yaml": pipeline(frozen=False)},
        after_repro={"dvc.yaml": pipeline(frozen=True)},
        variations=(
            Variation("frozen-dep-edit", {}, edits={"source.txt": "other\n"}),
            Variation("force", {"force": True}),
            Variation("frozen-target-force", {"targets": ["fetch"], "force": True, "singleItem": True}),
        ),
    )


def always_changed() -> Shape:
    return Shape(
        name="always-changed",
        files={
            "src.txt": "v1\n",
            "dvc.yaml": {
                "stages": {
                    "copy": {
                        "cmd": "cat src.txt > copy.txt",
                        "deps": ["src.txt"],
                        "outs": ["copy.txt"],
                        "always_changed": True,
                    },
                    "after": {"cmd": "cat copy.txt > after.txt", "deps": ["copy.txt"], "outs": ["after.txt"]},
                    "no-deps": {"cmd": "echo fixed > fixed.txt", "outs": ["fixed.txt"]},
                }
            },
        },
    )


def top_level_sections() -> Shape:
    return Shape(
        name="top-level-sections",
        files={
            "extra.yaml": {"threshold": 0.5},
            "params.yaml": {"train": {"lr": 0.1}},
            "dvc.yaml": {
                "params": ["extra.yaml"],
                "metrics": ["scores.json"],
                "plots": [{"curve.csv": {"x": "step", "y": "value"}}],
                "artifacts": {"classifier": {"path": "model.txt", "type": "model"}},
                "stages": {
                    "train": {
                        "cmd": "grep lr params.yaml > model.txt && echo '{\"acc\": 1}' > scores.json"
                        " && printf 'step,value\\n1,2\\n' > curve.csv",
                        "params": ["train.lr"],
                        "outs": ["model.txt"],
                        "metrics": [{"scores.json": {"cache": False}}],
                        "plots": [{"curve.csv": {"cache": False}}],
                    }
                },
            },
        },
        variations=(Variation("top-level-param-edit", {}, edits={"extra.yaml": "threshold: 0.7\n"}),),
    )


def punctuated_names() -> Shape:
    return Shape(
        name="punctuated-names",
        files={
            "dvc.yaml": {
                "stages": {
                    "prep-data": {"cmd": "echo p > prep.txt", "outs": ["prep.txt"]},
                    "train.v2": {"cmd": "cat prep.txt > v2.txt", "deps": ["prep.txt"], "outs": ["v2.txt"]},
                    "eval_final": {"cmd": "cat v2.txt > final.txt", "deps": ["v2.txt"], "outs": ["final.txt"]},
                }
            }
        },
        variations=(
            Variation("dotted-target-force", {"targets": ["train.v2"], "force": True}),
            Variation("dashed-target-downstream", {"targets": ["prep-data"], "downstream": True, "force": True}),
        ),
    )


def failing_stage() -> Shape:
    """A stage that fails, run with keepGoing (`dvc repro -k`): the independent branch runs, the dependent one not.

    Without keepGoing, which independent stages run before the failure depends on DVC's order among them (seeded
    by hashing), so that case is compared only as a targeted, forced run of the failing stage.
    """
    return Shape(
        name="failing-stage",
        run_options={"keepGoing": True},
        files={
            "dvc.yaml": {
                "stages": {
                    "bad": {"cmd": "echo partial > bad.txt && exit 3", "outs": ["bad.txt"]},
                    "after-bad": {"cmd": "cat bad.txt > after.txt", "deps": ["bad.txt"], "outs": ["after.txt"]},
                    "good": {"cmd": "echo fine > good.txt", "outs": ["good.txt"]},
                }
            }
        },
        variations=(
            Variation("failing-target-alone", {"targets": ["bad"], "force": True}),
            Variation("good-target-keep-going", {"targets": ["good"], "force": True, "keepGoing": True}),
        ),
    )


def cross_pipeline() -> Shape:
    return Shape(
        name="cross-pipeline",
        main="pipelines/b/dvc.yaml",
        files={
            "pipelines/a/input.txt": "a1\n",
            "pipelines/a/dvc.yaml": {
                "stages": {
                    "make_out": {"cmd": "cat input.txt > produced.txt", "deps": ["input.txt"], "outs": ["produced.txt"]}
                }
            },
            "pipelines/b/dvc.yaml": {
                "stages": {
                    "consume": {
                        "cmd": "cat ../a/produced.txt > consumed.txt",
                        "deps": ["../a/produced.txt"],
                        "outs": ["consumed.txt"],
                    },
                    "report": {
                        "cmd": "wc -c < consumed.txt > report.txt",
                        "deps": ["consumed.txt"],
                        "outs": ["report.txt"],
                    },
                }
            },
        },
        variations=(
            Variation("upstream-pipeline-changed", {}, edits={"pipelines/a/input.txt": "a2\n"}),
            Variation(
                "downstream-from-a",
                {"targets": ["make_out"], "downstream": True},
                edits={"pipelines/a/input.txt": "a3\n"},
                pipeline="pipelines/a/dvc.yaml",
            ),
            Variation("single-item-target", {"targets": ["consume"], "singleItem": True, "force": True}),
        ),
    )


SHAPES = [
    plain_chain,
    vars_inline,
    vars_from_files,
    foreach_list,
    foreach_list_of_dicts,
    foreach_dict,
    matrix,
    interpolation_everywhere,
    cmd_list,
    stage_wdir,
    subfolder_pipeline,
    params_json,
    params_toml,
    params_python,
    whole_file_params,
    dvc_tracked_dep,
    persist,
    cache_false,
    frozen,
    frozen_with_outputs,
    always_changed,
    top_level_sections,
    punctuated_names,
    failing_stage,
    cross_pipeline,
]
