#!/usr/bin/env bash
# Progressive JPEG fixtures of the DC-only 1/8 decoder (src/pipeline/jpeg_dc/progressive.rs),
# each a small crop of testdata/small.jpg (licence as small.jpg), made by libjpeg-turbo's
# cjpeg/jpegtran (Debian libjpeg-turbo-progs) and Pillow:
#   - sampling 4:2:0, 4:2:2, 4:4:4, 4:1:1 and grey, odd sizes (not multiples of 8 or 16);
#   - scan scripts with DC successive approximation (a first scan with Al > 0, then
#     refinement scans), DC scans one per component, a DC first scan without its refinement,
#     AC spectral selection and successive approximation;
#   - restart intervals of one MCU (-restart 1B), one MCU row (-restart 1) and two MCUs;
#   - libjpeg's own progressive script (cjpeg -progressive, jpegtran -progressive) and
#     Pillow's (progressive=True), whose files redefine the Huffman tables before every scan.
# baseline/ holds each file's baseline twin (jpegtran: the same coefficients, one interleaved
# scan), which the baseline DC path must decode to the same pixels.
# Hostile variants (truncated, refinement removed, huge DRI, garbage AC data) are made from
# these by the tests themselves. Deterministic: run from anywhere, rewrites the *.jpg here.
#   testdata/jpeg/progressive/make.sh   (needs cjpeg, djpeg, jpegtran; Pillow from target/venv)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
py=${PYTHON:-$root/target/venv/bin/python}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

djpeg -ppm "$root/testdata/small.jpg" >"$tmp/src.ppm"
# crop NAME W H X Y: a PPM crop of small.jpg
crop() { "$py" -c "from PIL import Image; Image.open('$tmp/src.ppm').crop(($4, $5, $4 + $2, $5 + $3)).save('$tmp/$1.ppm')"; }

# DC one scan per component with Al = 2, AC, then DC refinements: Y alone, Cb+Cr interleaved,
# then all three interleaved.
cat >"$tmp/dc-separate-sa.txt" <<'S'
0: 0-0, 0, 2;
1: 0-0, 0, 2;
2: 0-0, 0, 2;
0: 1-63, 0, 0;
1: 1-63, 0, 0;
2: 1-63, 0, 0;
0: 0-0, 2, 1;
1 2: 0-0, 2, 1;
0 1 2: 0-0, 1, 0;
S
# DC with Al = 1 and no refinement scan: libjpeg decodes it with the DC's last bit 0.
cat >"$tmp/dc-no-refinement.txt" <<'S'
0 1 2: 0-0, 0, 1;
0: 1-63, 0, 0;
1: 1-63, 0, 0;
2: 1-63, 0, 0;
S
# AC spectral selection and successive approximation for luma.
cat >"$tmp/ac-sa.txt" <<'S'
0 1 2: 0-0, 0, 0;
0: 1-5, 0, 2;
0: 6-63, 0, 2;
0: 1-63, 2, 1;
0: 1-63, 1, 0;
1: 1-63, 0, 0;
2: 1-63, 0, 0;
S
cat >"$tmp/grey-sa.txt" <<'S'
0: 0-0, 0, 1;
0: 1-63, 0, 0;
0: 0-0, 1, 0;
S

crop a 101 75 200 150
cjpeg -quality 85 -progressive "$tmp/a.ppm" >"$here/p420-simple-101x75.jpg"
crop b 99 67 300 100
cjpeg -quality 85 -sample 2x1 -scans "$tmp/dc-separate-sa.txt" "$tmp/b.ppm" >"$here/p422-dc-separate-sa-99x67.jpg"
crop c 64 48 120 200
cjpeg -quality 85 -sample 1x1 -progressive -restart 1B "$tmp/c.ppm" >"$here/p444-restart-1mcu-64x48.jpg"
crop d 97 71 400 220
cjpeg -quality 85 -scans "$tmp/dc-separate-sa.txt" -restart 1 "$tmp/d.ppm" >"$here/p420-dc-separate-sa-restart-1row-97x71.jpg"
crop e 73 41 260 300
cjpeg -quality 85 -sample 4x1 -progressive "$tmp/e.ppm" >"$here/p411-73x41.jpg"
crop f 77 53 50 60
cjpeg -quality 85 -grayscale -scans "$tmp/grey-sa.txt" "$tmp/f.ppm" >"$here/grey-sa-77x53.jpg"
crop g 81 57 330 250
cjpeg -quality 85 -scans "$tmp/dc-no-refinement.txt" "$tmp/g.ppm" >"$here/p420-dc-no-refinement-81x57.jpg"
crop h 88 64 480 40
cjpeg -quality 85 -scans "$tmp/ac-sa.txt" -restart 2B "$tmp/h.ppm" >"$here/p420-ac-sa-restart-2mcu-88x64.jpg"
crop i 67 45 10 300
cjpeg -quality 80 "$tmp/i.ppm" | jpegtran -progressive >"$here/p420-jpegtran-67x45.jpg"
crop j 95 63 520 330
"$py" -c "from PIL import Image; Image.open('$tmp/j.ppm').save('$here/pillow-p420-95x63.jpg', quality=80, progressive=True, optimize=True)"
crop k 57 39 150 20
"$py" -c "from PIL import Image; Image.open('$tmp/k.ppm').save('$here/pillow-p444-57x39.jpg', quality=90, progressive=True, subsampling=0)"
mkdir -p "$here/baseline"
rm -f "$here"/baseline/*.jpg
for f in "$here"/*.jpg; do
  jpegtran -optimize "$f" >"$here/baseline/$(basename "$f")"
done
ls -l "$here"/*.jpg "$here"/baseline/*.jpg
