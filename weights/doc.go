// Package weights reads model weights stored in the safetensors and GGUF
// formats, decodes GGUF's block-quantized types and quantizes into them.
//
// A safetensors file is an 8-byte little-endian header length N, N bytes of
// JSON describing every tensor (dtype, shape and byte range), then the packed
// tensor data. [Open] maps a file read-only and validates the whole header
// before handing out any tensor, so a corrupt or hostile file yields an error
// rather than a panic or an out-of-range slice. [OpenCheckpoint] opens a
// Hugging Face model directory, either a single model.safetensors or a
// sharded one described by model.safetensors.index.json.
//
// Tensors alias the mapping: their bytes are valid until the owning [File] or
// [Checkpoint] is closed, and must never be written to. [Write] and
// [WriteFile] produce files this package (and other safetensors readers) can
// load, which is how tests and tools build synthetic models.
//
// [OpenGGUF] maps a GGUF file (llama.cpp's format) the same way and validates
// its whole header. Its tensors come in the Hugging Face shape (GGUF stores
// dimensions fastest first) and may be quantized: [Tensor.Float32] decodes
// Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K and Q6_K exactly as ggml does, and
// [Quantize] produces Q8_0, Q4_0 and Q4_K with the bytes of ggml's reference
// quantizers.
package weights
