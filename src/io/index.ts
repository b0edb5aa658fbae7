// Public surface of the file-formats layer (pure CPU, no GPU engine dependency).
export { type HostDType, type HostTensor, HOST_DTYPE_BYTES, numel, hostTensor } from './host-tensor.js';
export { FormatError } from './errors.js';
export { decodeF16, encodeF16, decodeBf16, encodeBf16 } from './half.js';
export { writeFileAtomic, readFully } from './atomic-write.js';
export {
  readSafetensors, readSafetensorsWithMetadata, readSafetensorsHeader, readSafetensorsDir, parseSafetensors,
  parseSafetensorsHeader, writeSafetensors, serializeSafetensors,
  type SafetensorsOptions, type SafetensorsHeader, type SaveDType, type TensorToSave,
} from './safetensors.js';
export { readLlama2c, writeLlama2c, parseLlama2cHeader, type Llama2cCheckpoint } from './llama2c.js';
export { interleavedToHalf, halfToInterleaved, permuteRopeTensor } from './rope-permute.js';
export {
  readHfConfig, parseHfConfig, writeHfConfig, hfConfigJson,
  type LlamaConfig, type Gpt2Config, type ModelConfig, type HfConfigResult,
} from './config.js';
export { type Tokenizer, type EncodeOptions, StreamDecoder, loadTokenizer } from './tokenizer.js';
export { Llama2cTokenizer } from './tokenizer-llama2c.js';
export { HfTokenizer, type HfTokenizerOptions } from './tokenizer-hf.js';
export { bpeMerge, type PairLookup, type PairMerge } from './bpe.js';
export {
  findModelFile, modelSearchPaths, defaultCacheDir, downloadTinyllama, ModelNotFoundError, TINYLLAMAS,
  type FindOptions, type DownloadOptions,
} from './model-files.js';
