package deploy

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
)

// SaveCache writes d to path, whole or not at all (a temporary file synced
// and renamed over it). A fleet node keeps the last deployment it served
// there, so that a restart while its shared store is unreachable serves
// that deployment instead of nothing.
func SaveCache(path string, d Deployment) error {
	b, err := json.Marshal(d)
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("deployment cache %s: %w", path, err)
	}
	return nil
}

// LoadCache reads the deployment SaveCache wrote to path.
func LoadCache(path string) (Deployment, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Deployment{}, err
	}
	var d Deployment
	if err := json.Unmarshal(b, &d); err != nil || d.ID == 0 {
		return Deployment{}, fmt.Errorf("deployment cache %s is damaged: %v", path, err)
	}
	return d, nil
}
