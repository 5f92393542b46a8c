"""The real profiles' new rows on the real dataset format: SPARC (template prompts) and the authors' released checkpoint.

A COCO 2014 fixture in the real layout, scored by a random-init CLIP whose embeddings have RN50's 1024
dimensions (a tiny open_clip config registered here), so that the released COCO classifier applies.
"""
import json

import numpy as np
import open_clip
import pytest

from lcmc_core.errors import ConfigError
from lcmc_core.experiments.experiment import Experiment
from lcmc_core.experiments.profiles import load_profile
from lcmc_core.experiments.rows import Row

from fixtures_datasets import make_coco2014

TINY_1024 = {"embed_dim": 1024, "vision_cfg": {"image_size": 64, "layers": [1, 1, 1, 1], "width": 16, "head_width": 32},
             "text_cfg": {"context_length": 32, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 1}}


@pytest.fixture(scope="module")
def coco(tmp_path_factory):
    folder = tmp_path_factory.mktemp("configs")
    (folder / "lcmc-test-rn-1024.json").write_text(json.dumps(TINY_1024))
    open_clip.add_model_config(folder)
    return make_coco2014(tmp_path_factory.mktemp("coco"), extra_images=60)     # SPARC's PCA needs N > k + 1


def _experiment(coco, tmp_path, **tree):
    prof = load_profile("coco2014")
    base = {k: v for k, v in prof.params.items() if "." not in k}     # the real profile's own choices ...
    base.update(data_root=str(coco.root), clip_model="lcmc-test-rn-1024", clip_pretrained="random", device="cpu",
                corpus_size=120, n_seeds=1,                          # ... at a size a test affords
                comparison={"prompt_copies": 1, "prompt_templates": "none", "taidpt": False,
                            "released_checkpoint": prof.params["comparison.released_checkpoint"],
                            "sparc_prompts_per_class": 2},
                evaluation={"n_boot": 0}, method={"classifier": {"epochs": 2, "batch_size": 64, "warmup_epochs": 1}})
    base.update(tree)
    return Experiment(base, out_dir=tmp_path, profile="coco2014")


@pytest.mark.slow
def test_the_coco_profile_runs_sparc_and_the_released_checkpoint_on_the_real_format(coco, tmp_path):
    exp = _experiment(coco, tmp_path)
    assert exp.params.class_names == "official" and "motor bike" in exp.label_set.prompt_names
    with pytest.warns(UserWarning, match="UNTRAINED weights"):
        res = exp.comparison(progress=False)
    assert Row.SPARC in res.table.index and Row.COMC_SPARC_FUSION in res.table.index
    assert Row.COMC_RELEASED in res.table.index and np.isfinite(res.table["mAP"]).all()
    from lcmc_core.method.comc import CoMC
    released = CoMC.from_official_checkpoint()
    feats = res.image_features
    np.testing.assert_allclose(res.scores[Row.COMC_RELEASED], released.decision_function(feats.global_, feats.local),
                               atol=1e-6)


@pytest.mark.slow
def test_the_released_checkpoint_on_a_model_of_other_dimensions_is_refused(coco, tmp_path):
    exp = _experiment(coco, tmp_path, clip_model="lcmc-toy-rn")
    with pytest.warns(UserWarning, match="UNTRAINED"), pytest.raises(ConfigError, match="1024-dimensional"):
        exp.comparison(progress=False)
