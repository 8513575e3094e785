package weights

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
)

// File names used by Hugging Face model directories.
const (
	SingleFileName = "model.safetensors"
	IndexFileName  = "model.safetensors.index.json"
)

// Checkpoint is the set of tensors of a Hugging Face model directory, held
// either in a single model.safetensors or in shards listed by
// model.safetensors.index.json. Like [File], it may be read concurrently but
// must not be closed while in use.
type Checkpoint struct {
	dir   string
	files []*File
	owner map[string]*File // tensor name -> file holding it
	names []string
}

// indexFile is the JSON layout of model.safetensors.index.json. Its
// "metadata" (usually just total_size) carries nothing the reader needs.
type indexFile struct {
	WeightMap map[string]string `json:"weight_map"`
}

// OpenCheckpoint opens the model directory dir. A single model.safetensors
// is preferred when present, as transformers does; otherwise the index is
// read and every shard it names is opened. Every tensor the index lists must
// be present in its shard; tensors a shard holds beyond the index are
// ignored, since the index is what defines the checkpoint.
func OpenCheckpoint(dir string) (*Checkpoint, error) {
	single := filepath.Join(dir, SingleFileName)
	// Lstat: a dangling or looping link is reported by Open as such.
	if _, err := os.Lstat(single); err == nil {
		f, err := Open(single)
		if err != nil {
			return nil, err
		}
		c := &Checkpoint{dir: dir, files: []*File{f}, owner: make(map[string]*File), names: f.Names()}
		for _, name := range c.names {
			c.owner[name] = f
		}
		return c, nil
	}

	indexPath := filepath.Join(dir, IndexFileName)
	if _, err := os.Lstat(indexPath); errors.Is(err, fs.ErrNotExist) {
		return nil, &Error{Path: dir, Err: fmt.Errorf("neither %s nor %s found", SingleFileName, IndexFileName)}
	}
	data, err := ReadFileLimited(indexPath, MaxConfigBytes)
	if err != nil {
		return nil, err
	}
	var index indexFile
	if err := json.Unmarshal(data, &index); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) {
			// The decoder's own message would name Go types.
			msg := "invalid index: weight_map must map tensor names to file names"
			if typeErr.Field == "" {
				msg = "invalid index: not a JSON object"
			}
			return nil, &Error{Path: indexPath, Err: errors.New(msg)}
		}
		return nil, &Error{Path: indexPath, Err: fmt.Errorf("invalid index: %v", err)}
	}
	if len(index.WeightMap) == 0 {
		return nil, &Error{Path: indexPath, Err: errors.New("index has no weight_map entries")}
	}

	c := &Checkpoint{dir: dir, owner: make(map[string]*File, len(index.WeightMap))}
	shards := make(map[string]*File)
	c.names = make([]string, 0, len(index.WeightMap))
	for name := range index.WeightMap {
		c.names = append(c.names, name)
	}
	slices.Sort(c.names) // opens shards, and reports problems, in a fixed order
	for _, name := range c.names {
		shard := index.WeightMap[name]
		// The index is data from the download; it must not steer reads
		// outside the model directory.
		if !filepath.IsLocal(shard) {
			c.Close()
			return nil, &Error{Path: indexPath, Tensor: name, Err: fmt.Errorf("shard %q is not a file inside the directory", shard)}
		}
		f, ok := shards[shard]
		if !ok {
			path := filepath.Join(dir, shard)
			var err error
			f, err = Open(path)
			if err != nil {
				c.Close()
				if errors.Is(err, fs.ErrNotExist) {
					return nil, &Error{Path: path, Err: fmt.Errorf("shard listed in %s does not exist", IndexFileName)}
				}
				return nil, err
			}
			shards[shard] = f
			c.files = append(c.files, f)
		}
		if _, ok := f.infos[name]; !ok {
			c.Close()
			return nil, &Error{Path: f.path, Tensor: name, Err: fmt.Errorf("listed in %s but not in the shard", IndexFileName)}
		}
		c.owner[name] = f
	}
	return c, nil
}

// Close closes every file of the checkpoint. Tensors obtained from it must
// not be used afterwards.
func (c *Checkpoint) Close() error {
	var errs []error
	for _, f := range c.files {
		errs = append(errs, f.Close())
	}
	return errors.Join(errs...)
}

// Dir returns the directory the checkpoint was opened from.
func (c *Checkpoint) Dir() string { return c.dir }

// Has reports whether the checkpoint holds the named tensor. Loaders use it
// for optional tensors, such as lm_head.weight in a tied model.
func (c *Checkpoint) Has(name string) bool {
	_, ok := c.owner[name]
	return ok
}

// Names returns the names of all tensors in the checkpoint, sorted.
func (c *Checkpoint) Names() []string { return slices.Clone(c.names) }

// Get returns the tensor with the given Hugging Face name, such as
// "model.layers.0.mlp.up_proj.weight". If shape is given, the tensor must
// have exactly that shape; with no shape, any shape is accepted. A missing
// tensor gives an error wrapping [ErrNotFound].
func (c *Checkpoint) Get(name string, shape ...int) (*Tensor, error) {
	f, ok := c.owner[name]
	if !ok {
		return nil, &Error{Path: c.dir, Tensor: name, Err: ErrNotFound}
	}
	t, err := f.Tensor(name)
	if err != nil {
		return nil, err
	}
	if len(shape) > 0 && !slices.Equal(t.Shape, shape) {
		return nil, t.errorf("shape %v, want %v", t.Shape, shape)
	}
	return t, nil
}
