package detection

import "testing"

func TestFilterApply(t *testing.T) {
	person := det(0, 0.9, 0, 0, 10, 10)    // area 100
	smallPerson := det(0, 0.9, 0, 0, 3, 3) // area 9
	car := det(2, 0.4, 0, 0, 20, 20)       // area 400
	weakCar := det(2, 0.3, 0, 0, 20, 20)   // below the car minimum
	dog := det(16, 0.35, 0, 0, 10, 10)     // not in the allow-list
	edgeCar := det(2, 0.35, 5, 5, 15, 15)  // exactly the car minimum
	all := []Detection{person, smallPerson, car, weakCar, dog, edgeCar}

	tests := []struct {
		name string
		f    Filter
		want []Detection
	}{
		{"zero filter keeps all", Filter{}, all},
		{"allow-list", Filter{Allow: map[int]bool{0: true, 2: true, 16: false}},
			[]Detection{person, smallPerson, car, weakCar, edgeCar}},
		{"empty allow-list keeps none", Filter{Allow: map[int]bool{}}, nil},
		{"per-label min score", Filter{MinScore: map[int]float32{2: 0.35, 16: 0.5}},
			[]Detection{person, smallPerson, car, edgeCar}},
		{"min area", Filter{MinArea: 100}, []Detection{person, car, weakCar, dog, edgeCar}},
		{"all three", Filter{Allow: map[int]bool{0: true, 2: true}, MinScore: map[int]float32{2: 0.35}, MinArea: 50},
			[]Detection{person, car, edgeCar}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dets := append([]Detection(nil), all...)
			got := tt.f.Apply(dets)
			if len(got) != len(tt.want) {
				t.Fatalf("kept %d, want %d:\n got %+v\nwant %+v", len(got), len(tt.want), got, tt.want)
			}
			for i := range tt.want {
				if got[i] != tt.want[i] {
					t.Errorf("kept[%d] = %+v, want %+v", i, got[i], tt.want[i])
				}
			}
			if len(got) > 0 && &got[0] != &dets[0] {
				t.Error("Apply did not filter in place")
			}
		})
	}
}

func TestFilterNoAllocs(t *testing.T) {
	f := Filter{Allow: map[int]bool{0: true, 2: true}, MinScore: map[int]float32{2: 0.5}, MinArea: 10}
	src := nmsCandidates(100)
	dets := make([]Detection, len(src))
	assertNoAllocs(t, "Filter.Apply", func() {
		copy(dets, src)
		f.Apply(dets)
	})
}
