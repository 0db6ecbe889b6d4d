//go:build race

package health_test

// raceDetector: the race detector is on. It slows the JSON work of
// generating histories about fifteen times.
const raceDetector = true
