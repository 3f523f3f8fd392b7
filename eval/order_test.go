package eval

import "testing"

// TestTiedScoresAcrossImagesFollowImageIDOrder: pycocotools pools the
// detections of all images (imgIds sorted ascending) and sorts them by score
// with a stable sort (np.argsort(-scores, kind='mergesort')), so detections
// with equal scores keep the ascending image-id order, and that order
// changes AP. Worked out by hand, for one class, one object per image and
// one detection per image, both scored 0.5, exact boxes (so every IoU
// threshold behaves alike):
//
//   - false positive first (image 1 misses, image 2 hits): cumulative
//     tp = [0 1], fp = [1 1], recall = [0 .5], precision = [0 .5], made
//     monotone from the right = [.5 .5]; recall points 0..0.50 (51 of
//     101) read .5, the rest 0: AP = 51*.5/101 = 25.5/101.
//   - true positive first: recall = [.5 .5], precision = [1 .5] stays;
//     recall points 0..0.50 read 1: AP = 51/101.
//
// AR is 0.5 either way.
func TestTiedScoresAcrossImagesFollowImageIDOrder(t *testing.T) {
	objA, objB := b(10, 10, 110, 110), b(200, 200, 300, 300)
	miss, hitB := det(0, 0.5, b(400, 300, 500, 400)), det(0, 0.5, objB)
	hitA := det(0, 0.5, objA)
	tests := []struct {
		name   string
		images []Image // in dataset (file) order
		dets   map[int][]Detection
		ap     float64
	}{
		{
			name: "miss in image 1, hit in image 2",
			images: []Image{
				{ID: 1, Objects: []Object{obj(0, objA)}},
				{ID: 2, Objects: []Object{obj(0, objB)}},
			},
			dets: map[int][]Detection{1: {miss}, 2: {hitB}},
			ap:   25.5 / 101,
		},
		{
			name: "hit in image 1, miss in image 2",
			images: []Image{
				{ID: 1, Objects: []Object{obj(0, objA)}},
				{ID: 2, Objects: []Object{obj(0, objB)}},
			},
			dets: map[int][]Detection{1: {hitA}, 2: {miss}},
			ap:   51.0 / 101,
		},
		{
			// Dataset order is not id order: ids still decide (the hit in
			// image 3 comes before the miss in image 8).
			name: "ids out of file order",
			images: []Image{
				{ID: 8, Objects: []Object{obj(0, objA)}},
				{ID: 3, Objects: []Object{obj(0, objB)}},
			},
			dets: map[int][]Detection{8: {miss}, 3: {hitB}},
			ap:   51.0 / 101,
		},
		{
			// Three images: miss (id 1), hit (id 2), hit (id 5), all 0.5.
			// tp = [0 1 2], fp = [1 1 1], npig = 3: recall [0 1/3 2/3],
			// precision [0 .5 2/3] -> monotone [2/3 2/3 2/3]; recall
			// points 0..0.66 (67) read 2/3: AP = 67*(2/3)/101.
			name: "three images",
			images: []Image{
				{ID: 5, Objects: []Object{obj(0, b(0, 300, 90, 390))}},
				{ID: 1, Objects: []Object{obj(0, objA)}},
				{ID: 2, Objects: []Object{obj(0, objB)}},
			},
			dets: map[int][]Detection{1: {miss}, 2: {hitB}, 5: {det(0, 0.5, b(0, 300, 90, 390))}},
			ap:   67 * (2.0 / 3) / 101,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ds := &Dataset{Names: []string{"thing"}}
			for _, img := range tt.images {
				img.Width, img.Height = 640, 480
				ds.Images = append(ds.Images, img)
			}
			e := NewEvaluator(ds)
			for id, d := range tt.dets {
				if err := e.Add(id, d); err != nil {
					t.Fatal(err)
				}
			}
			s := e.Evaluate().Summary
			near(t, "AP", s.AP, tt.ap)
			near(t, "AP50", s.AP50, tt.ap)
			near(t, "AP75", s.AP75, tt.ap)
		})
	}
}
