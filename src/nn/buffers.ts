// Non-parameter buffers that published checkpoints carry beside the weights. Hub files were
// often written by a transformers version that saved registered buffers, so e.g. the `gpt2`
// repository's model.safetensors holds each block's causal mask `h.N.attn.bias` and sometimes
// `h.N.attn.masked_bias`. They hold no learned values (nla computes masks and RoPE itself),
// so each architecture lists the ones it knows, with the shape they must have; the loader
// skips a tensor only when both name and shape match, and anything else unknown is still
// refused as an "unexpected tensor" by Weights.validate.
import type { ModelConfig } from '../io/config.js';

export interface KnownBuffer {
  /** What it is, for messages. */
  what: string;
  shape: number[];
}

/**
 * The buffer a tensor name denotes for this architecture, with its expected shape, or
 * undefined when the name is not a known buffer. Names are as stored in the file (GPT-2
 * files with and without the "transformer." prefix both occur).
 */
export function knownBuffer(cfg: ModelConfig, name: string): KnownBuffer | undefined {
  if (cfg.arch === 'gpt2') {
    const m = /^(?:transformer\.)?h\.(\d+)\.attn\.(bias|masked_bias)$/.exec(name);
    if (!m || Number(m[1]) >= cfg.nLayers) return undefined;
    // GPT2Attention: bias = tril(ones(n_positions, n_positions)).view(1, 1, n, n) (f32 or bool);
    // masked_bias = tensor(-1e4), a scalar.
    return m[2] === 'bias'
      ? { what: 'GPT-2 causal-mask buffer', shape: [1, 1, cfg.maxSeqLen, cfg.maxSeqLen] }
      : { what: 'GPT-2 masked_bias buffer', shape: [] };
  }
  // Llama / Mistral / Qwen2 checkpoints saved by transformers < 4.36 keep RoPE's inverse
  // frequencies per attention layer (or once per model in some exports): [head_dim / 2].
  const m = /^model\.(?:layers\.(\d+)\.self_attn\.)?rotary_emb\.inv_freq$/.exec(name);
  if (!m || (m[1] !== undefined && Number(m[1]) >= cfg.nLayers)) return undefined;
  return { what: 'RoPE inv_freq buffer', shape: [(cfg.headDim ?? cfg.dim / cfg.nHeads) / 2] };
}

/**
 * A safetensors `skip` predicate for this architecture: true for a known buffer of the right
 * shape; a known buffer name with another shape is an error naming the file, the tensor and
 * both shapes (it means the config does not describe this checkpoint).
 */
export function bufferSkipper(cfg: ModelConfig, file: string): (name: string, shape: number[]) => boolean {
  return (name, shape) => {
    const b = knownBuffer(cfg, name);
    if (!b) return false;
    if (shape.length !== b.shape.length || shape.some((d, i) => d !== b.shape[i])) {
      throw new Error(`${file}: tensor "${name}" (${b.what}) has shape [${shape}], expected [${b.shape}]`);
    }
    return true;
  };
}
