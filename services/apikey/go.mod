module github.com/moreline/moreid/services/apikey

go 1.26

require (
	github.com/moreline/moreid/platform v0.0.0
	github.com/moreline/moreid/proto v0.0.0
)

replace (
	github.com/moreline/moreid/platform => ../../platform
	github.com/moreline/moreid/proto => ../../proto
)
