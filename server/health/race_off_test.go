//go:build !race

package health_test

// raceDetector: the race detector is on.
const raceDetector = false
