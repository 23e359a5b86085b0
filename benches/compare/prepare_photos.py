#!/usr/bin/env python3
"""The goal workloads' photos (issue 16), none of them in the tuning set (testdata/).

usage: prepare_photos.py BACKGROUNDS_DIR OUT_DIR

BACKGROUNDS_DIR holds the wallpapers of Debian's lomiri-wallpapers-16.04 and -20.04 packages
(real photos, CC-BY/CC-BY-SA/CC0: see their copyright files; run.sh extracts them). Writes:
- baseline-15mp.jpg: seeding_by_Clements_Engelhardt.jpg (5312x2988, 15.9 MP) made baseline
  losslessly by `jpegtran -optimize` (same DCT coefficients, one sequential scan);
- progressive-16mp.jpg: Infinite-Sea_by_Aury88.jpg as published (4096x4096, 16.8 MP,
  progressive, 6.7 MB);
- 4mp.jpg: Picture_0B_by_freespace.jpg (2572x1740, 4.5 MP) made baseline as above, as a
  camera or a CMS stores it; 4mp-progressive.jpg: the same as published (progressive);
- rgba.png: sunset_by_Aitzol_Berasategi.jpg at 1800 px wide with a feathered elliptical
  alpha (about a third transparent, a third opaque, a third in between);
- gallery/: 50 originals for the cold-gallery run: the 15 wallpapers not used above as
  published, then centre crops of 80%, 60% and 70% of them re-encoded at q90 (as a CMS
  would store edits) up to 50, distinct bytes each;
- warm.jpg: a small photo outside the gallery for the servers' warm-up request.
"""
import os
import shutil
import subprocess
import sys

import numpy as np
from PIL import Image


def main(src, out):
    os.makedirs(os.path.join(out, "gallery"), exist_ok=True)
    path = lambda name: os.path.join(src, name)
    dst = lambda name: os.path.join(out, name)

    base = dst("baseline-15mp.jpg")
    if not os.path.exists(base):
        with open(base, "wb") as f:
            subprocess.run(["jpegtran", "-optimize", "-copy", "all",
                            path("seeding_by_Clements_Engelhardt.jpg")], stdout=f, check=True)
    assert not Image.open(base).info.get("progressive"), "jpegtran kept it progressive"
    shutil.copyfile(path("Infinite-Sea_by_Aury88.jpg"), dst("progressive-16mp.jpg"))
    assert Image.open(dst("progressive-16mp.jpg")).info.get("progressive")
    shutil.copyfile(path("Picture_0B_by_freespace.jpg"), dst("4mp-progressive.jpg"))
    with open(dst("4mp.jpg"), "wb") as f:
        subprocess.run(["jpegtran", "-optimize", "-copy", "all",
                        path("Picture_0B_by_freespace.jpg")], stdout=f, check=True)
    assert not Image.open(dst("4mp.jpg")).info.get("progressive")

    if not os.path.exists(dst("rgba.png")):
        im = Image.open(path("sunset_by_Aitzol_Berasategi.jpg")).convert("RGB")
        w = 1800
        im = im.resize((w, round(im.height * w / im.width)), Image.LANCZOS)
        yy, xx = np.mgrid[0:im.height, 0:im.width]
        r = np.sqrt(((xx - im.width / 2) / (im.width / 2)) ** 2
                    + ((yy - im.height / 2) / (im.height / 2)) ** 2)
        alpha = np.clip((1.15 - r) / 0.5, 0, 1) * 255
        rgba = im.convert("RGBA")
        rgba.putalpha(Image.fromarray(alpha.astype(np.uint8)))
        rgba.save(dst("rgba.png"), optimize=False)

    used = {"seeding_by_Clements_Engelhardt.jpg", "Infinite-Sea_by_Aury88.jpg",
            "Picture_0B_by_freespace.jpg", "sunset_by_Aitzol_Berasategi.jpg"}
    photos = sorted(f for f in os.listdir(src) if f.endswith(".jpg") and f not in used)
    gallery = os.path.join(out, "gallery")
    n = 0
    for f in photos:
        shutil.copyfile(path(f), os.path.join(gallery, f"{n:02d}-{f}"))
        n += 1
    for share in (0.8, 0.6, 0.7):
        for f in photos:
            if n == 50:
                break
            name = os.path.join(gallery, f"{n:02d}-crop{int(share * 100)}-{f}")
            if not os.path.exists(name):
                im = Image.open(path(f)).convert("RGB")
                cw, ch = int(im.width * share), int(im.height * share)
                x, y = (im.width - cw) // 2, (im.height - ch) // 2
                im.crop((x, y, x + cw, y + ch)).save(name, quality=90)
            n += 1
    assert n == 50, n
    small = path("Picture_1A_by_freespace.jpg")
    im = Image.open(small).convert("RGB")
    im.resize((640, round(im.height * 640 / im.width)), Image.LANCZOS).save(dst("warm.jpg"), quality=85)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
