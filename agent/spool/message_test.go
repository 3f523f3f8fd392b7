package spool

import "github.com/edgedet/edgedet/agent/publish"

// Message is the type the spool stores, named short for the tests.
type Message = publish.Message
