import numpy as np
import scipy.sparse as sp

from lmrec.ranking import exclude, top_k


def test_top_k_orders_and_breaks_ties_by_index():
    scores = np.array([[0.1, 0.5, 0.5, 0.9, 0.0]], dtype=np.float32)
    assert top_k(scores, 3).tolist() == [[3, 1, 2]]


def test_exclusion_removes_items_and_pads():
    scores = np.array([[3.0, 2.0, 1.0]], dtype=np.float32)
    mask = sp.csr_matrix(np.array([[1, 0, 1]], dtype=np.float32))
    exclude(scores, mask)
    assert top_k(scores, 3).tolist() == [[1, -1, -1]]
