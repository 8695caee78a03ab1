"""Rebuild catalogs/supernovae/ from the public SNPhotCC DES release (see README.md in this folder).

    python catalogs/supernovae/make_subset.py SIMGEN_PUBLIC_DES.tar.gz SIMGEN_PUBLIC_DES_TRUTH.KEY

The archive is read with astrobayes's own SNANA reader; the 20 observations
with FLUXCALERR = -9 (flux and error both -9: no measurement) are dropped.
"""
import shutil
import sys
import tarfile
import warnings
from pathlib import Path

import numpy as np

from astrobayes.supernovae import read_snana, write_lightcurves

HERE = Path(__file__).resolve().parent


def main(archive: str, truth: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the 20 dropped observations
        lcs = read_snana(archive, truth=truth, drop_invalid=True)
    lcs = lcs.select(np.argsort(lcs.ids.astype(int)))  # SNID order, whatever the archive's order
    rng = np.random.default_rng(2010)
    spectroscopic = np.asarray(lcs.meta["spectroscopic"])
    photometric = np.flatnonzero(~spectroscopic)
    chosen = np.concatenate([np.flatnonzero(spectroscopic),
                             rng.choice(photometric, 4000 - spectroscopic.sum(), replace=False)])
    subset = lcs.select(np.sort(chosen))
    subset.meta["file"] = [name.split("/")[-1] for name in subset.meta["file"]]
    subset.meta.remove_column("sntype")
    subset.observations.meta = {
        "flux_zeropoint_mag": 27.5,
        "source": "SNPhotCC SIMGEN_PUBLIC_DES (Kessler et al. 2010), subset: all 1103 spectroscopic + 2897 random "
                  "photometric objects (numpy seed 2010)"}
    write_lightcurves(subset, HERE / "spcc_des_subset.ecsv.gz", overwrite=True)
    # twelve original files: two per class among the spectroscopic and the photometric objects
    picked = []
    for is_spec in (True, False):
        for label in ("Ia", "II", "Ibc"):
            rows = np.flatnonzero((spectroscopic == is_spec) & (lcs.labels == label))
            picked += list(rng.choice(rows, 2, replace=False))
    sample = HERE / "snana_sample"
    sample.mkdir(exist_ok=True)
    names = {lcs.meta["file"][i].split("/")[-1] for i in picked}
    with tarfile.open(archive) as tar:
        for member in tar:
            if Path(member.name).name in names:
                with tar.extractfile(member) as src, open(sample / Path(member.name).name, "wb") as dst:
                    shutil.copyfileobj(src, dst)
    ids = {str(lcs.ids[i]) for i in picked}
    with open(truth) as key, open(sample / "TRUTH.KEY", "w") as out:
        for line in key:
            if line.startswith(("#", "SNID")) or line.split()[0] in ids:
                out.write(line)


if __name__ == "__main__":
    main(*sys.argv[1:3])
