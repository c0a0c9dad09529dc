// dockerfile-lint: the checks of `docker build --check` (BuildKit's Dockerfile frontend), run
// without a container engine. Prints one line per warning; exit 1 when there is any.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/client/llb/sourceresolver"
	"github.com/moby/buildkit/frontend/dockerfile/dockerfile2llb"
	digest "github.com/opencontainers/go-digest"
)

// offline answers every base image with an empty linux/amd64 config: nothing is pulled, so
// the checks that need a real image (its platform, its ENV) see a neutral one.
type offline struct{}

func (offline) ResolveImageConfig(
	_ context.Context, ref string, _ sourceresolver.Opt,
) (string, digest.Digest, []byte, error) {
	config := []byte(`{"architecture": "amd64", "os": "linux", "config": {}}`)
	return ref, digest.FromBytes(config), config, nil
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: dockerfile-lint Dockerfile")
		os.Exit(2)
	}
	dt, err := os.ReadFile(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	sm := llb.NewSourceMap(nil, os.Args[1], "Dockerfile", dt)
	sm.Definition = &llb.Definition{} // lint reads no build graph, only where lines are
	opt := dockerfile2llb.ConvertOpt{SourceMap: sm, MetaResolver: offline{}}
	res, err := dockerfile2llb.DockerfileLint(context.Background(), dt, opt)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", os.Args[1], err)
		os.Exit(2)
	}
	if res.Error != nil {
		fmt.Fprintf(os.Stderr, "%s: %s\n", os.Args[1], res.Error.Message)
		os.Exit(2)
	}
	for _, w := range res.Warnings {
		line := 0
		if len(w.Location.Ranges) > 0 {
			line = int(w.Location.Ranges[0].Start.Line)
		}
		fmt.Printf("%s:%d: %s: %s\n", os.Args[1], line, w.RuleName, w.Detail)
	}
	if len(res.Warnings) > 0 {
		os.Exit(1)
	}
	fmt.Printf("%s: ok\n", os.Args[1])
}
