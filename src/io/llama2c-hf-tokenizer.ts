// A llama2.c tokenizer (tok512.bin) written as a Hugging Face tokenizer.json that encodes every
// text the same way (tests/io-llama2c-hf-tokenizer.test.ts checks it against Llama2cTokenizer),
// so that a model nla trained with it can be handed to tools that only read the Hub's formats
// (the reference NLA trainer, transformers).
//
// How run.c's encode maps onto the tokenizers library:
//   - pieces keep their bytes, with " " written as "▁"; BOS/EOS ("\n<s>\n", "\n</s>\n" in the
//     .bin) become the added specials "<s>"/"</s>", "<unk>" stays;
//   - run.c merges the adjacent pair whose concatenation has the highest score; a BPE model
//     merges the pair of lowest rank, so every split a+b of a piece becomes a merge ranked by
//     the piece's score (highest first). Distinct pieces with equal scores would need run.c's
//     leftmost tie rule across pieces, which ranks cannot say: refused;
//   - byte fallback is the same (<0xXX> pieces);
//   - the dummy-prefix space: a Metaspace pre-tokenizer with prepend_scheme "first" adds "▁"
//     to text that starts at offset 0. Text after an added token gets none, so a chat
//     template writes "<s>" followed by a literal space to get the same ids as run.c's
//     encode(text, bos);
//   - `single` (optional) is one character to declare as an added token, for an injection
//     marker the reference requires to encode alone as exactly one id: run.c gives it the
//     dummy-prefix space as well ([▁, id]). It must be a piece that takes part in no merge
//     (e.g. a byte-fallback piece such as DEL, <0x7F>), so splitting text around it changes
//     nothing. The one difference this leaves: a text that starts with that character gets no
//     dummy-prefix space (run.c: [▁, id, ...]; here [id, ...]).
// Text holding a literal "<s>", "</s>" or "<unk>" is tokenised as the special token here and as
// characters by run.c, and a literal "▁" becomes the space piece: the Hub's Llama-2 tokenizers
// behave the same way.
import type { Llama2cTokenizer } from './tokenizer-llama2c.js';

const BYTE_PIECE = /^<0x[0-9A-F]{2}>$/;
export const HF_SPECIALS = { unk: '<unk>', bos: '<s>', eos: '</s>' } as const;

export interface HfTokenizerFiles {
  /** tokenizer.json */
  tokenizer: Record<string, unknown>;
  /** The id of `single`, when given. */
  singleId?: number;
}

/** tokenizer.json for a llama2.c tokenizer (ids 0/1/2 = unk/BOS/EOS, 3..258 = <0x00>..<0xFF>). */
export function llama2cToHfTokenizer(tok: Llama2cTokenizer, opts: { single?: string } = {}): HfTokenizerFiles {
  const utf8 = new TextDecoder('utf-8', { fatal: true });
  const names: string[] = tok.pieceBytes.map((b, id) => {
    if (id === 0) return HF_SPECIALS.unk;
    if (id === tok.bosId) return HF_SPECIALS.bos;
    if (id === tok.eosId) return HF_SPECIALS.eos;
    let s: string;
    try {
      s = utf8.decode(b);
    } catch {
      throw new Error(`tokenizer piece ${id} is not valid UTF-8 on its own; a tokenizer.json vocabulary cannot hold it`);
    }
    if (s.includes('▁')) throw new Error(`tokenizer piece ${id} ${JSON.stringify(s)} contains "▁", which tokenizer.json uses for the space`);
    return s.replaceAll(' ', '▁');
  });
  const vocab = new Map<string, number>();
  names.forEach((s, id) => {
    if (vocab.has(s)) throw new Error(`tokenizer pieces ${vocab.get(s)} and ${id} are both ${JSON.stringify(s)}; a tokenizer.json vocabulary needs distinct pieces`);
    vocab.set(s, id);
  });

  // Merges: every split of every piece (not specials, not byte pieces) into two pieces; run.c
  // merges only into pieces scoring above -1e10.
  const merges: { a: string; b: string; score: number; id: number }[] = [];
  const inMerge = new Set<number>();
  for (let id = 3; id < names.length; id++) {
    const s = names[id], score = tok.score(id);
    if (BYTE_PIECE.test(s) || !(score > -1e10)) continue;
    const chars = [...s];
    for (let k = 1; k < chars.length; k++) {
      const a = chars.slice(0, k).join(''), b = chars.slice(k).join('');
      const ia = vocab.get(a), ib = vocab.get(b);
      if (ia === undefined || ib === undefined || ia < 3 || ib < 3 || BYTE_PIECE.test(a) || BYTE_PIECE.test(b)) continue;
      merges.push({ a, b, score, id });
      inMerge.add(ia).add(ib).add(id);
    }
  }
  merges.sort((x, y) => y.score - x.score || x.id - y.id);
  for (let i = 1; i < merges.length; i++) {
    const p = merges[i - 1], q = merges[i];
    if (p.score === q.score && p.id !== q.id) throw new Error(`tokenizer pieces ${p.id} ${JSON.stringify(names[p.id])} and ${q.id} ${JSON.stringify(names[q.id])} share the score ${p.score}; run.c breaks that tie by position, which BPE merge ranks cannot express`);
  }

  const added: Record<string, unknown>[] = [0, tok.bosId, tok.eosId].map((id) => ({ id, content: names[id], single_word: false, lstrip: false, rstrip: false, normalized: false, special: true }));
  let singleId: number | undefined;
  if (opts.single !== undefined) {
    const ch = opts.single;
    if ([...ch].length !== 1) throw new Error(`the injection marker ${JSON.stringify(ch)} must be one character to be written as a single added token`);
    const body = tok.encode(ch).filter((id, i) => !(i === 0 && names[id] === '▁'));
    if (body.length !== 1) throw new Error(`the injection marker ${JSON.stringify(ch)} encodes to ${body.length} tokens after the dummy-prefix space; it must be one`);
    singleId = body[0];
    if (inMerge.has(singleId)) throw new Error(`the injection marker ${JSON.stringify(ch)} (id ${singleId}) takes part in merges, so declaring it an added token would change how text around it is tokenised`);
    // The piece becomes the character itself: the added token and the vocabulary then agree on
    // its id (the tokenizers library looks an added token's content up in the vocabulary).
    vocab.delete(names[singleId]);
    names[singleId] = ch;
    vocab.set(ch, singleId);
    added.push({ id: singleId, content: ch, single_word: false, lstrip: false, rstrip: false, normalized: false, special: false });
  }

  const tokenizer = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: added,
    normalizer: null,
    pre_tokenizer: { type: 'Metaspace', replacement: '▁', prepend_scheme: 'first', split: false },
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: HF_SPECIALS.bos, type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [{ SpecialToken: { id: HF_SPECIALS.bos, type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: HF_SPECIALS.bos, type_id: 1 } }, { Sequence: { id: 'B', type_id: 1 } }],
      special_tokens: { [HF_SPECIALS.bos]: { id: HF_SPECIALS.bos, ids: [tok.bosId], tokens: [HF_SPECIALS.bos] } },
    },
    decoder: {
      type: 'Sequence',
      decoders: [
        { type: 'Replace', pattern: { String: '▁' }, content: ' ' },
        { type: 'ByteFallback' },
        { type: 'Fuse' },
        { type: 'Strip', content: ' ', start: 1, stop: 0 },
      ],
    },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: HF_SPECIALS.unk,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: true,
      byte_fallback: true,
      ignore_merges: false,
      vocab: Object.fromEntries(names.map((s, id) => [s, id])),
      merges: merges.map((m) => [m.a, m.b]),
    },
  };
  return { tokenizer, singleId };
}
