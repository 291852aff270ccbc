package anomaly

import (
	"fmt"
	"os"
	"testing"
)

func TestZZDebugCaps(t *testing.T) {
	if os.Getenv("DBG") == "" {
		t.Skip()
	}
	for _, c := range capabilities() {
		d := NewDetector(DefaultDetectorConfig)
		fmt.Println("==", c.name)
		for i, v := range c.values {
			r := d.Update(int64(capMonday+i*capStep), v)
			if r.Score >= 0.3 && (i < c.start+capDetectN) {
				fmt.Printf("  day %5.2f i %d v %.1f score %.3f %s\n", float64(i)/capDay, i, v, r.Score, r.Signal)
			}
		}
	}
}
