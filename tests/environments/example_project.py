"""A small replica of DVC's official example project (iterative/example-get-started), unreachable from here.

Its four stages, prepare -> featurize -> train -> evaluate, as Python scripts under src/ that need pandas,
scikit-learn, scipy, PyYAML, matplotlib and dvclive from the project's own pinned requirements.txt; its params.yaml;
a generated Stack Overflow-like posts file (data/data.xml) tracked by a `.dvc` file as the data source; metrics in
eval/metrics.json and plots (dvclive's ROC points and an importance image) under eval/plots/.
"""

from __future__ import annotations

import hashlib
import random
from html import escape
from typing import Any

# The original's requirements (dvclive, pandas, pyaml, scikit-learn, scipy, matplotlib), pinned to wheels for
# CPython 3.11 on manylinux, so that a build is a download and an unpack, never a compile.
REQUIREMENTS = """\
dvclive==3.48.0
matplotlib==3.9.2
numpy==2.1.3
pandas==2.2.3
PyYAML==6.0.2
scikit-learn==1.5.2
scipy==1.14.1
"""

PARAMS = """\
prepare:
  split: 0.20
  seed: 20170428

featurize:
  max_features: 100
  ngrams: 1

train:
  seed: 20170428
  n_est: 50
  min_split: 0.01
"""

PREPARE_PY = """\
import os
import random
import re
import sys
import xml.etree.ElementTree

import yaml

params = yaml.safe_load(open("params.yaml"))["prepare"]

if len(sys.argv) != 2:
    sys.stderr.write("Arguments error. Usage:\\n\\tpython prepare.py data-file\\n")
    sys.exit(1)

split = params["split"]
random.seed(params["seed"])

input = sys.argv[1]
output_train = os.path.join("data", "prepared", "train.tsv")
output_test = os.path.join("data", "prepared", "test.tsv")


def process_posts(input_lines, fd_out_train, fd_out_test, target_tag, split):
    num = 1
    for line in input_lines:
        try:
            fd_out = fd_out_train if random.random() > split else fd_out_test
            attr = xml.etree.ElementTree.fromstring(line).attrib

            pid = attr.get("Id", "")
            label = 1 if target_tag in attr.get("Tags", "") else 0
            title = re.sub(r"\\s+", " ", attr.get("Title", "")).strip()
            body = re.sub(r"\\s+", " ", attr.get("Body", "")).strip()
            text = title + " " + body

            fd_out.write("{}\\t{}\\t{}\\n".format(pid, label, text))

            num += 1
        except Exception as ex:
            sys.stderr.write(f"Skipping the broken line {num}: {ex}\\n")


os.makedirs(os.path.join("data", "prepared"), exist_ok=True)

with open(input) as fd_in:
    input_lines = fd_in.readlines()

with open(output_train, "w", encoding="utf-8") as fd_out_train, open(output_test, "w", encoding="utf-8") as fd_out_test:
    process_posts(input_lines, fd_out_train, fd_out_test, "<r>", split)
"""

FEATURIZATION_PY = """\
import os
import pickle
import sys

import numpy as np
import pandas as pd
import scipy.sparse as sparse
import yaml
from sklearn.feature_extraction.text import CountVectorizer, TfidfTransformer

params = yaml.safe_load(open("params.yaml"))["featurize"]

np.set_printoptions(suppress=True)

if len(sys.argv) != 3 and len(sys.argv) != 5:
    sys.stderr.write("Arguments error. Usage:\\n\\tpython featurization.py data-dir-path features-dir-path\\n")
    sys.exit(1)

train_input = os.path.join(sys.argv[1], "train.tsv")
test_input = os.path.join(sys.argv[1], "test.tsv")
train_output = os.path.join(sys.argv[2], "train.pkl")
test_output = os.path.join(sys.argv[2], "test.pkl")

max_features = params["max_features"]
ngrams = params["ngrams"]


def get_df(data):
    df = pd.read_csv(data, encoding="utf-8", header=None, delimiter="\\t", names=["id", "label", "text"])
    sys.stderr.write(f"The input data frame {data} size is {df.shape}\\n")
    return df


def save_matrix(df, matrix, names, output):
    id_matrix = sparse.csr_matrix(df.id.astype(np.int64)).T
    label_matrix = sparse.csr_matrix(df.label.astype(np.int64)).T

    result = sparse.hstack([id_matrix, label_matrix, matrix], format="csr")

    msg = "The output matrix {} size is {} and data type is {}\\n"
    sys.stderr.write(msg.format(output, result.shape, result.dtype))

    with open(output, "wb") as fd:
        pickle.dump((result, names), fd)


os.makedirs(sys.argv[2], exist_ok=True)

# Generate train feature matrix
df_train = get_df(train_input)
train_words = np.array(df_train.text.str.lower().values)

bag_of_words = CountVectorizer(stop_words="english", max_features=max_features, ngram_range=(1, ngrams))

bag_of_words.fit(train_words)
train_words_binary_matrix = bag_of_words.transform(train_words)
feature_names = bag_of_words.get_feature_names_out()
tfidf = TfidfTransformer(smooth_idf=False)
tfidf.fit(train_words_binary_matrix)
train_words_tfidf_matrix = tfidf.transform(train_words_binary_matrix)

save_matrix(df_train, train_words_tfidf_matrix, feature_names, train_output)

# Generate test feature matrix
df_test = get_df(test_input)
test_words = np.array(df_test.text.str.lower().values)

test_words_binary_matrix = bag_of_words.transform(test_words)
test_words_tfidf_matrix = tfidf.transform(test_words_binary_matrix)

save_matrix(df_test, test_words_tfidf_matrix, feature_names, test_output)
"""

TRAIN_PY = """\
import os
import pickle
import sys

import numpy as np
import yaml
from sklearn.ensemble import RandomForestClassifier

params = yaml.safe_load(open("params.yaml"))["train"]

if len(sys.argv) != 3:
    sys.stderr.write("Arguments error. Usage:\\n\\tpython train.py features model\\n")
    sys.exit(1)

input = sys.argv[1]
output = sys.argv[2]
seed = params["seed"]
n_est = params["n_est"]
min_split = params["min_split"]

with open(os.path.join(input, "train.pkl"), "rb") as fd:
    matrix, _ = pickle.load(fd)

labels = np.squeeze(matrix[:, 1].toarray())
x = matrix[:, 2:]

sys.stderr.write("Input matrix size {}\\n".format(matrix.shape))
sys.stderr.write("X matrix size {}\\n".format(x.shape))
sys.stderr.write("Y matrix size {}\\n".format(labels.shape))

clf = RandomForestClassifier(n_estimators=n_est, min_samples_split=min_split, n_jobs=2, random_state=seed)

clf.fit(x, labels)

with open(output, "wb") as fd:
    pickle.dump(clf, fd)
"""

EVALUATE_PY = """\
import json
import math
import os
import pickle
import sys

import matplotlib

matplotlib.use("Agg")  # no display in a stage

import matplotlib.pyplot as plt
import pandas as pd
from dvclive import Live
from sklearn import metrics

EVAL_PATH = "eval"


def evaluate(model, matrix, split, live):
    labels = matrix[:, 1].toarray().astype(int)
    x = matrix[:, 2:]

    predictions_by_class = model.predict_proba(x)
    predictions = predictions_by_class[:, 1]

    # Use dvclive to log a few simple metrics...
    avg_prec = metrics.average_precision_score(labels, predictions)
    roc_auc = metrics.roc_auc_score(labels, predictions)
    if not live.summary:
        live.summary = {"avg_prec": {}, "roc_auc": {}}
    live.summary["avg_prec"][split] = avg_prec
    live.summary["roc_auc"][split] = roc_auc

    # ... and plots...
    # ... like an roc plot...
    live.log_sklearn_plot("roc", labels, predictions, name=f"roc/{split}")
    # ... and precision recall plot...
    # ... which passes `drop_intermediate=True` to the sklearn method...
    live.log_sklearn_plot("precision_recall", labels, predictions, name=f"prc/{split}", drop_intermediate=True)
    # ... and confusion matrix plot
    live.log_sklearn_plot(
        "confusion_matrix", labels.squeeze(), predictions_by_class.argmax(-1), name=f"cm/{split}"
    )


def save_importance_plot(live, model, feature_names):
    fig, axes = plt.subplots(dpi=100)
    fig.subplots_adjust(bottom=0.2, top=0.95)
    axes.set_ylabel("Mean decrease in impurity")

    importances = model.feature_importances_
    forest_importances = pd.Series(importances, index=feature_names).nlargest(n=30)
    forest_importances.plot.bar(ax=axes)

    live.log_image("importance.png", fig)


if len(sys.argv) != 3:
    sys.stderr.write("Arguments error. Usage:\\n\\tpython evaluate.py model features\\n")
    sys.exit(1)

model_file = sys.argv[1]
train_file = os.path.join(sys.argv[2], "train.pkl")
test_file = os.path.join(sys.argv[2], "test.pkl")

with open(model_file, "rb") as fd:
    model = pickle.load(fd)

with open(train_file, "rb") as fd:
    train, feature_names = pickle.load(fd)

with open(test_file, "rb") as fd:
    test, _ = pickle.load(fd)

# The original leaves dvc.yaml to the project; here the service owns it (dvcyaml=None), and a stage keeps no
# experiment of its own.
with Live(EVAL_PATH, dvcyaml=None, save_dvc_exp=False) as live:
    evaluate(model, train, "train", live)
    evaluate(model, test, "test", live)
    save_importance_plot(live, model, feature_names)
"""

STAGES: list[dict[str, Any]] = [
    {
        "name": "prepare",
        "command": "python src/prepare.py data/data.xml",
        "deps": ["data/data.xml", "src/prepare.py"],
        "params": ["prepare.seed", "prepare.split"],
        "outs": ["data/prepared"],
    },
    {
        "name": "featurize",
        "command": "python src/featurization.py data/prepared data/features",
        "deps": ["data/prepared", "src/featurization.py"],
        "params": ["featurize.max_features", "featurize.ngrams"],
        "outs": ["data/features"],
    },
    {
        "name": "train",
        "command": "python src/train.py data/features model.pkl",
        "deps": ["data/features", "src/train.py"],
        "params": ["train.min_split", "train.n_est", "train.seed"],
        "outs": ["model.pkl"],
    },
    {
        "name": "evaluate",
        "command": "python src/evaluate.py model.pkl data/features",
        "deps": ["data/features", "model.pkl", "src/evaluate.py"],
        "metrics": ["eval/metrics.json"],
        "plots": ["eval/plots"],
    },
]

# Words of posts about R (the target tag, as in the original) and of posts about other things.
R_WORDS = ["dataframe", "ggplot", "dplyr", "tidyverse", "vector", "factor", "rstudio", "cran", "lapply", "tibble"]
OTHER_WORDS = ["python", "django", "numpy", "javascript", "react", "java", "spring", "sql", "query", "docker"]
COMMON_WORDS = ["error", "function", "install", "package", "value", "list", "loop", "file", "output", "result"]


def posts_xml(count: int = 400, seed: int = 7) -> str:
    """Posts in the original's shape (Stack Overflow's Posts.xml, a row a line); about a third tagged <r>."""
    rng = random.Random(seed)
    lines = ['<?xml version="1.0" encoding="utf-8"?>', "<posts>"]
    for post_id in range(1, count + 1):
        about_r = rng.random() < 0.35
        topical = R_WORDS if about_r else OTHER_WORDS
        # Some words of the other topic too, so that the classifier is good, not perfect.
        words = rng.choices(topical, k=6) + rng.choices(OTHER_WORDS if about_r else R_WORDS, k=1)
        words += rng.choices(COMMON_WORDS, k=8)
        rng.shuffle(words)
        tags = "<r><dplyr>" if about_r else f"<{rng.choice(OTHER_WORDS)}>"
        title = " ".join(words[:5])
        body = "<p>" + " ".join(words[5:]) + "</p>"
        lines.append(
            f'  <row Id="{post_id}" PostTypeId="1" Tags="{escape(tags)}" Title="{escape(title)}" '
            f'Body="{escape(body)}" />'
        )
    lines.append("</posts>")
    return "\n".join(lines) + "\n"


def data_source(data: str) -> str:
    """data/data.xml.dvc: what `dvc add data/data.xml` writes, the project's data source."""
    raw = data.encode()
    return f"outs:\n- md5: {hashlib.md5(raw).hexdigest()}\n  size: {len(raw)}\n  hash: md5\n  path: data.xml\n"


FILES: dict[str, str] = {
    "requirements.txt": REQUIREMENTS,
    "params.yaml": PARAMS,
    "src/prepare.py": PREPARE_PY,
    "src/featurization.py": FEATURIZATION_PY,
    "src/train.py": TRAIN_PY,
    "src/evaluate.py": EVALUATE_PY,
    "data/.gitignore": "/data.xml\n",
}
