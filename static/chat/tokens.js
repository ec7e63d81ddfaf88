// The gateway's token estimate (dataplane/tokens.py), so the usage bars can show how much of a
// running answer's reservation is already spent while it streams. The true figure replaces it
// when the answer ends; like the server's, this errs slightly high.

const WIDE_RANGES = [
  [0x1100, 0x11ff], [0x2e80, 0x2fdf], [0x3000, 0x303f], [0x3040, 0x30ff], [0x3130, 0x318f],
  [0x3400, 0x4dbf], [0x4e00, 0x9fff], [0xa960, 0xa97f], [0xac00, 0xd7af], [0xd7b0, 0xd7ff],
  [0xf900, 0xfaff], [0xff00, 0xffef], [0x20000, 0x3ffff],
];
const LETTER_OR_MARK = /[\p{L}\p{M}\p{N}]/u;
const SEPARATOR = /\p{Z}/u;

function quarters(char) {
  const codePoint = char.codePointAt(0);
  if (codePoint < 128) return /[A-Za-z0-9\s]/.test(char) ? 1 : 2;
  if (WIDE_RANGES.some(([low, high]) => codePoint >= low && codePoint <= high)) return 4;
  if (LETTER_OR_MARK.test(char)) return 2;
  if (SEPARATOR.test(char)) return 1;
  return 4;
}

export function estimateTokens(text) {
  let total = 0;
  for (const char of text || "") total += quarters(char);
  return Math.ceil(total / 4);
}
