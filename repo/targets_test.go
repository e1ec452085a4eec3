package repo

import "testing"

func TestWithCapabilities(t *testing.T) {
	got, err := WithCapabilities([]byte(`{"release_notes":"x","capabilities":["radio"]}`), []string{"network", "camera"})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"capabilities":["camera","network"],"release_notes":"x"}`; string(got) != want {
		t.Errorf("WithCapabilities = %s, want %s", got, want)
	}
	if _, err := WithCapabilities(nil, []string{"camera", "camera"}); err == nil {
		t.Error("duplicate capability accepted")
	}
	if _, err := WithCapabilities([]byte(`[1]`), []string{"camera"}); err == nil {
		t.Error("custom that is not an object accepted")
	}
}
