module github.com/qwgpu/qwgpu

go 1.26.0

require (
	github.com/rajveermalviya/go-webgpu/wgpu v0.17.1
	github.com/spf13/pflag v1.0.10
	github.com/stretchr/testify v1.11.1
	golang.org/x/text v0.44.0
)

require (
	github.com/davecgh/go-spew v1.1.1 // indirect
	github.com/pmezard/go-difflib v1.0.0 // indirect
	gopkg.in/yaml.v3 v3.0.1 // indirect
)
