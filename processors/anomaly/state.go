package anomaly

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// stateVersion prefixes a detector's checkpoint; a checkpoint of another version (a
// detector changed between releases) is not restored: the series learns again.
const stateVersion = 7

var errStateVersion = errors.New("anomaly: checkpoint of another detector version")

// stateSize is the encoded state's size, without the version byte.
var stateSize = binary.Size(detectorState{})

// MarshalBinary encodes the detector's state (not its configuration).
func (d *Detector) MarshalBinary() ([]byte, error) {
	b := make([]byte, 1, 1+stateSize)
	b[0] = stateVersion
	return binary.Append(b, binary.LittleEndian, &d.st)
}

// UnmarshalBinary restores a state MarshalBinary encoded into d (made with NewDetector).
func (d *Detector) UnmarshalBinary(b []byte) error {
	if len(b) == 0 || b[0] != stateVersion {
		return errStateVersion
	}
	if len(b) != 1+stateSize {
		return fmt.Errorf("anomaly: checkpoint of %d bytes, want %d", len(b), 1+stateSize)
	}
	var st detectorState
	if _, err := binary.Decode(b[1:], binary.LittleEndian, &st); err != nil {
		return fmt.Errorf("anomaly: checkpoint: %w", err)
	}
	d.st = st
	return nil
}
